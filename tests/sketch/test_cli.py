"""`portway sketch ...` against a running Portway: progress on stderr, files in --out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from portway.cli import build_parser
from portway.sketch.cli import run
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.sketch.support import MODEL, narrative, reply, shortener


def test_the_cli_writes_the_diagram_the_design_and_the_graph(
    start_portway: PortwayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    server = start_portway(
        {
            "master_key": "sk-cli",
            "models": [fake_model(MODEL, fake_openai.base_url)],
            "sketch": {"poll_interval_seconds": 0.05},
        }
    )
    fake_openai.script(reply(shortener()), reply(narrative()))
    out = tmp_path / "out"
    args = build_parser().parse_args(
        [
            "sketch",
            "a URL shortener with analytics",
            "--model",
            MODEL,
            "--out",
            str(out),
            "--base-url",
            server.url,
            "--api-key",
            "sk-cli",
            "--poll",
            "0.05",
            "--formats",
            "dot",
        ]
    )
    stderr = io.StringIO()
    assert run(args, stderr=stderr) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "design.md",
        "diagram.dot",
        "diagram.mmd",
        "diagram.svg",
        "graph.json",
    ]
    assert json.loads((out / "graph.json").read_text()) == shortener()
    assert (out / "diagram.svg").read_text().startswith("<svg")
    assert (out / "diagram.mmd").read_text().splitlines()[3] == "flowchart TB"
    assert "## Components" in (out / "design.md").read_text()
    log = stderr.getvalue()
    assert "completed" in log and "wrote" in log


def test_the_cli_reports_a_refused_key(
    start_portway: PortwayFactory,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = start_portway(
        {"master_key": "sk-cli-2", "models": [fake_model(MODEL, fake_openai.base_url)]}
    )
    args = build_parser().parse_args(
        ["sketch", "x", "--out", str(tmp_path), "--base-url", server.url, "--api-key", "wrong"]
    )
    stderr = io.StringIO()
    assert run(args, stderr=stderr) == 1
    assert "401" in stderr.getvalue()
