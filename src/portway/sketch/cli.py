"""`portway sketch "a URL shortener with analytics" --out ./sketch/`: a client of a
running Portway's `/v1/sketches` (``--base-url``, default ``$PORTWAY_BASE_URL`` or
http://127.0.0.1:8080; ``--api-key``, default ``$PORTWAY_API_KEY``).

It creates the sketch, shows its progress on stderr while a worker generates it, then
writes ``diagram.svg``, ``diagram.mmd``, ``design.md`` and ``graph.json`` (``--formats``
adds others: png, architecture, dot, d2, drawio) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

DEFAULT_FORMATS = ("svg", "mermaid", "markdown", "json")
FINAL = frozenset({"completed", "failed", "awaiting_answers"})
SPINNER = "|/-\\"


class SketchClientError(Exception):
    pass


def _error_message(body: str) -> str:
    """The message of an OpenAI error body, else the body itself."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body
    return message if isinstance(message, str) else body


class Client:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = 60.0) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> tuple[bytes, dict[str, str]]:
        headers = {"accept": "*/*"}
        if self._key:
            headers["authorization"] = f"Bearer {self._key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        request = urllib.request.Request(self._base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            detail = _error_message(detail)
            raise SketchClientError(f"{error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise SketchClientError(
                f"cannot reach Portway at {self._base}: {error.reason}"
            ) from None

    def json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        content, _ = self.request(method, path, body)
        return json.loads(content)  # type: ignore[no-any-return]


class Progress:
    """One line on a terminal (redrawn), one line per change elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last = ""
        self._start = time.monotonic()
        self._tick = 0

    def show(self, sketch: dict[str, Any]) -> None:
        text = sketch["status"] + (f": {sketch['stage']}" if sketch.get("stage") else "")
        elapsed = time.monotonic() - self._start
        if self._tty:
            self._tick += 1
            spin = SPINNER[self._tick % len(SPINNER)]
            self._stream.write(f"\r{spin} {text} ({elapsed:.0f}s)\033[K")
            self._stream.flush()
        elif text != self._last:
            self._stream.write(f"[{elapsed:5.1f}s] {text}\n")
            self._stream.flush()
        self._last = text

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")


def run(args: argparse.Namespace, stderr: TextIO = sys.stderr) -> int:
    client = Client(args.base_url, args.api_key)
    body: dict[str, Any] = {"description": args.description, "options": {}}
    if args.model:
        body["model"] = args.model
    if args.max_nodes:
        body["options"]["max_nodes"] = args.max_nodes
    progress = Progress(stderr)
    try:
        sketch = client.json("POST", "/v1/sketches", body)
        deadline = time.monotonic() + args.timeout
        while sketch["status"] not in FINAL:
            progress.show(sketch)
            if time.monotonic() > deadline:
                raise SketchClientError(f"sketch {sketch['id']} still {sketch['status']}")
            time.sleep(args.poll)
            sketch = client.json("GET", f"/v1/sketches/{sketch['id']}")
        progress.show(sketch)
        progress.done()
        if sketch["status"] != "completed":
            reason = (sketch.get("error") or {}).get("message", sketch["status"])
            raise SketchClientError(f"sketch {sketch['id']} {sketch['status']}: {reason}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        formats = list(dict.fromkeys([*DEFAULT_FORMATS, *(args.formats or [])]))
        for name in formats:
            content, headers = client.request("GET", f"/v1/sketches/{sketch['id']}/export/{name}")
            disposition = headers.get("content-disposition") or headers.get("Content-Disposition")
            filename = (disposition or "").partition('filename="')[2].rstrip('"') or name
            (out / filename).write_bytes(content)
            stderr.write(f"wrote {out / filename}\n")
        for problem in sketch.get("problems") or []:
            stderr.write(f"note: {problem['message']}\n")
    except SketchClientError as error:
        progress.done()
        stderr.write(f"portway sketch: {error}\n")
        return 1
    print(sketch["id"])
    return 0


def add_command(commands: Any) -> None:
    sketch = commands.add_parser("sketch", help="sketch an architecture with a running Portway")
    sketch.add_argument("description", help="the system, in plain English")
    sketch.add_argument("--model", help="the model (default: the server's sketch model)")
    sketch.add_argument("--out", default="./sketch", help="output directory (default ./sketch)")
    sketch.add_argument(
        "--base-url",
        default=os.environ.get("PORTWAY_BASE_URL", "http://127.0.0.1:8080"),
        help="Portway's address (default $PORTWAY_BASE_URL or http://127.0.0.1:8080)",
    )
    sketch.add_argument(
        "--api-key", default=os.environ.get("PORTWAY_API_KEY"), help="default $PORTWAY_API_KEY"
    )
    sketch.add_argument("--max-nodes", type=int, help="at most this many components (2-40)")
    sketch.add_argument(
        "--formats",
        nargs="*",
        choices=["png", "architecture", "dot", "d2", "drawio"],
        help="extra formats to write",
    )
    sketch.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")
    sketch.add_argument("--poll", type=float, default=0.5, help="seconds between checks")
    sketch.set_defaults(handler=run)
