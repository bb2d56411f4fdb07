"""Python bytecodes executed per instrumented call, and in which functions (run by hand).

On the instrumented path almost all of otel-llm's added time is Python bytecode: in
``paired_overhead.py`` each bytecode otel-llm adds to a call costs tens of nanoseconds,
because its code runs once per call, between the client's own work, and is seldom in
the CPU's caches. Counting the bytecodes each function runs is exact and repeatable
(the same count every run, whatever else the machine does) and takes seconds, where
timing takes minutes and instruction counts under valgrind longer: it shows where a
change saves and by how much before the time benchmarks are run.

For each scenario of ``instrumentation_overhead.py`` (same clients, in-process
transports, SDK set-up), one call of each variant is traced with ``sys.settrace``
opcode events after a warm-up: ``bare`` and the hand-written span on clients with the
methods as they were before ``instrument()`` (as ``paired_overhead.py`` makes them),
``otel-llm`` on the instrumented ones. Added = variant minus bare. ``--functions N``
lists the N functions adding most for otel-llm (bytecodes over the bare call's in the
same function).

    python benchmarks/opcode_counts.py [--scenario "ollama stream" ...] [--functions 0]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrumentation_overhead import SCENARIOS  # noqa: E402
from paired_overhead import _check_spans, _variants  # noqa: E402

WARM_UP = 20

#: A function, as (file, line of its ``def``, name): the file from its package down.
Where = tuple[str, int, str]


def _where(frame: FrameType) -> Where:
    code = frame.f_code
    path = Path(code.co_filename)
    for package in ("otel_llm", "opentelemetry", "openai", "ollama", "httpx", "httpx2", "benchmarks"):
        if package in path.parts:
            path = Path(*path.parts[path.parts.index(package):])
            break
    return str(path), code.co_firstlineno, code.co_name


def count_bytecodes(call: Callable[[], Any]) -> Counter[Where]:
    """Bytecodes executed by one ``call()``, per function."""
    counts: Counter[Where] = Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            counts[_where(frame)] += 1
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--functions", type=int, default=0, help="list the N functions adding most for otel-llm")
    args = parser.parse_args(argv)
    variants, exporter = _variants()
    _check_spans(variants, exporter)
    print("| scenario | bare: bytecodes per call | hand-written: added | otel-llm: added | otel-llm / hand |")
    print("|---|---|---|---|---|")
    detail: list[str] = []
    for scenario in args.scenario or SCENARIOS:
        counts: dict[str, Counter[Where]] = {}
        for variant in ("bare", "hand", "otel-llm"):
            call = variants[variant][scenario]
            for _ in range(WARM_UP):
                call()
            counts[variant] = count_bytecodes(call)
        bare = sum(counts["bare"].values())
        hand = sum(counts["hand"].values()) - bare
        ours = sum(counts["otel-llm"].values()) - bare
        print(f"| {scenario} | {bare} | {hand} | {ours} | {ours / hand:.2f}x |", flush=True)
        if args.functions:
            added = Counter({w: n - counts["bare"].get(w, 0) for w, n in counts["otel-llm"].items()})
            detail.append(f"\n{scenario}: otel-llm, bytecodes added per function")
            detail += [f"{n:6d}  {w[0]}:{w[1]} {w[2]}" for w, n in added.most_common(args.functions) if n > 0]
    print("\n".join(detail))


if __name__ == "__main__":
    main()
