"""Where cached completions are kept: memory (default), SQLite, Redis."""
