"""Rendering a sketch: every export format of an N-component graph, timed.

The graph is the tests' synthetic fixture (``tests/sketch/support.large``: 4 tiers,
fan-outs and a cycle). Prints, per format, the median and worst time over ``--rounds``
renders, and the time to render every format once from one shared layout (what the
CLI and the page need), which the quality bar wants under 1 s for 30 nodes.

    PYTHONPATH=src:. python benchmarks/sketch_render.py [--nodes 30] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from tests.sketch.support import large

from portway.sketch.exporters import FORMATS, available, export, export_all
from portway.sketch.exporters.layout import layout
from portway.sketch.graph import parse_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    graph = parse_graph(large(args.nodes)).graph
    design = "# design\n" * 200
    export_all(graph, design)  # warm up imports
    print(f"{len(graph.components)} components, {len(graph.edges)} connections")
    timings: dict[str, list[float]] = {"layout": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        layout(graph)
        timings["layout"].append(time.perf_counter() - start)
        for name in FORMATS:
            if available(name):
                start = time.perf_counter()
                export(graph, name, design)  # each format on its own (layout included)
                timings.setdefault(name, []).append(time.perf_counter() - start)
    totals, cpu = [], []
    for _ in range(args.rounds):
        start, started_cpu = time.perf_counter(), time.process_time()
        export_all(graph, design)
        totals.append(time.perf_counter() - start)
        cpu.append(time.process_time() - started_cpu)
    # CPU time is what one idle core would take (wall time grows on a busy machine).
    for name, values in [*timings.items(), ("all formats", totals), ("all (CPU)", cpu)]:
        print(
            f"{name:>14}: median {statistics.median(values) * 1000:7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms"
        )


if __name__ == "__main__":
    main()
