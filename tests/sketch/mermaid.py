"""Checking Mermaid text: mermaid's own parser (Node, ``tests/js``) and a structural check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

JS = Path(__file__).resolve().parent.parent / "js"
CHECKER = JS / "mermaid_check.mjs"


def parser_missing() -> str | None:
    """Why mermaid's parser cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "mermaid").is_dir():
        return "mermaid is not installed in tests/js (make test runs npm ci there)"
    return None


def mermaid_parse(texts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each text through ``mermaid.parse``: name → {ok, type | error}."""
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for name, text in texts.items():
            path = Path(directory) / f"{name}.mmd"
            path.write_text(text)
            paths.append(str(path))
        done = subprocess.run(
            ["node", str(CHECKER), *paths], capture_output=True, text=True, timeout=120, cwd=JS
        )
    results = {}
    for line in done.stdout.splitlines():
        found = json.loads(line)
        results[Path(found.pop("file")).stem] = found
    assert len(results) == len(texts), done.stderr
    return results


_ID = r"[a-z][a-z0-9_]*"
_NODE = re.compile(rf'^({_ID})(\(\[|\{{\{{|\[\(|\[\[|>|\[)"([^"]*)"(\]\)|\}}\}}|\)\]|\]\]|\])$')
_EDGE = re.compile(rf'^({_ID}) (-->|-\.->)(\|"[^"]*"\|)? ({_ID})$')
_SUBGRAPH = re.compile(rf'^subgraph ({_ID})\["[^"]*"\]$')
_RESERVED = {"end", "graph", "subgraph", "style", "class", "click", "default"}


def check_flowchart(text: str) -> dict[str, Any]:
    """A structural check of the flowchart's lines: every line is a known statement,
    subgraphs are balanced, ids are not keywords and edges join declared nodes."""
    lines = text.strip().splitlines()
    assert lines[:1] == ["---"] and lines[2] == "---" and lines[3] == "flowchart TB", lines[:4]
    declared: set[str] = set()
    edges = []
    depth = 0
    for raw in lines[4:]:
        line = raw.strip()
        if match := _NODE.match(line):
            assert match[1] not in _RESERVED, line
            declared.add(match[1])
        elif match := _EDGE.match(line):
            edges.append((match[1], match[4]))
        elif _SUBGRAPH.match(line):
            depth += 1
        elif line == "end":
            depth -= 1
            assert depth >= 0, "an 'end' without a subgraph"
        elif line.startswith(("classDef ", "class ")):
            continue
        else:
            raise AssertionError(f"not a flowchart statement: {line!r}")
    assert depth == 0, "an unclosed subgraph"
    for source, target in edges:
        assert source in declared and target in declared, (source, target)
    return {"nodes": declared, "edges": edges}
