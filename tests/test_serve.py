"""`portway serve` as a real process on its embedded default: local model, no config, no key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.server import free_port

pytestmark = pytest.mark.slow


def test_embedded_default_serves_the_local_model(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWAY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "portway", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "portway serve did not become ready"
            time.sleep(0.2)
        models = httpx.get(f"{base}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["smollm2-135m"]
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            json={
                "model": "smollm2-135m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "Hi"}],
            },
            timeout=60,
        )
        assert reply.status_code == 200
        assert reply.json()["usage"]["completion_tokens"] <= 5
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in stderr
    assert "authentication is OFF" in stderr
