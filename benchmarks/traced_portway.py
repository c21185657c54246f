"""Run the ``portway`` command under tracemalloc, for finding what grows (benchmarks only).

Each SIGUSR1 writes a snapshot of the traced allocations to ``$PORTWAY_TRACE_DIR``
(``snapshot-NNN.pickle`` plus ``snapshot-NNN.json`` with tracemalloc's traced total and
its own overhead),
so a load driver can compare snapshots taken at intervals. Production code carries no
such hook: this wrapper starts tracemalloc and then hands over to ``portway.cli``.

    PORTWAY_TRACE_DIR=/tmp/trace python benchmarks/traced_portway.py serve --config ...
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 8  # enough to see which Portway call site owns an allocation made in a library


def snapshot_name(index: int) -> str:
    return f"snapshot-{index:03d}"


def _install(directory: Path) -> None:
    counter = itertools.count()

    def dump(signum: int, frame: FrameType | None) -> None:
        name = snapshot_name(next(counter))
        snapshot = tracemalloc.take_snapshot()
        traced, peak = tracemalloc.get_traced_memory()
        # tracemalloc's own tables (traces, interned tracebacks) count in RSS, not in
        # ``traced``: RSS growth under tracing may be theirs.
        overhead = tracemalloc.get_tracemalloc_memory()
        snapshot.dump(str(directory / f"{name}.pickle.tmp"))
        (directory / f"{name}.json").write_text(
            json.dumps({"traced": traced, "peak": peak, "tracemalloc": overhead})
        )
        # The pickle appears last, whole: the driver waits for it.
        os.replace(directory / f"{name}.pickle.tmp", directory / f"{name}.pickle")

    signal.signal(signal.SIGUSR1, dump)


def main() -> int:
    directory = Path(os.environ["PORTWAY_TRACE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    _install(directory)
    from portway.cli import main as portway

    return portway(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
