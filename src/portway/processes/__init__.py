"""``portway serve --workers N``: a supervisor, its worker processes and the model host."""
