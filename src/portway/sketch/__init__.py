"""The architecture sketcher: plain English in, a typed architecture graph, diagrams in
every common format and a design document out, every model call through Portway's door.

Modules: ``graph`` (the typed graph and its schema), ``validate`` (checks and tidying),
``diff`` (stable ids, version diffs), ``exporters`` (Mermaid, DOT, D2, draw.io, SVG,
PNG), ``design`` (the Markdown document), ``prompts`` and ``generate`` (the model
calls), ``engine`` / ``lifecycle`` (the background job), ``service`` / ``api`` (HTTP),
``page`` (``/ui/sketch``), ``cli`` (``portway sketch``), ``wiring``.
"""
