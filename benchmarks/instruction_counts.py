"""Instructions, cache misses and branch mispredictions added per instrumented call, under
valgrind (run by hand, not in CI; needs ``valgrind`` on the PATH).

``instrumentation_overhead.py`` measures time, which on a small shared machine moves by
more from run to run than the differences being looked for. valgrind's cachegrind counts
what the CPU is asked to do — instructions, simulated first-level cache misses, branch
mispredictions — and gives the same figures for the same code and inputs whatever else
the machine is doing. For each scenario of ``instrumentation_overhead.py`` (same
clients, same in-process transport, same SDK set-up) and each variant (``bare``,
``hand``: the hand-written span recording the same attributes, ``otel-llm``), one
process runs a warm-up and then ``--calls`` calls, another the warm-up and three times
as many; the difference divided by the extra calls is the per-call figure, start-up and
warm-up cancelled out. Added = variant minus bare. The counted calls run with the cyclic
garbage collector off: a collection of the whole heap landing in one process's calls
and not the other's moved the figures by up to a tenth between identical runs.

    python benchmarks/instruction_counts.py [--calls 100] [--jobs 2] [--scenario "ollama stream" ...]
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from instrumentation_overhead import SCENARIOS  # noqa: E402

VARIANTS = ("bare", "hand", "otel-llm")
#: cachegrind summary lines read, as (label in its output, column name).
COUNTERS = (("I refs", "instructions"), ("I1 misses", "I1 misses"), ("D1 misses", "D1 misses"),
            ("Mispredicts", "mispredicts"))
WARM_UP = 50


def run_calls(scenario: str, variant: str, calls: int) -> None:
    """In the process valgrind watches: set up, warm up, then ``calls`` calls."""
    import instrumentation_overhead as bench

    bench._install_sdk()
    oa, ol = bench.make_clients()
    fn = bench.bare_calls(oa, ol)[scenario]
    if variant == "hand":
        fn = bench.hand_calls(oa, ol, full=True)[scenario]
    elif variant == "otel-llm":
        from otel_llm.instrument import instrument

        instrument()
    for _ in range(WARM_UP):
        fn()
    # A collection of the whole heap (the clients, pydantic, the SDK: millions of
    # instructions) falls into one process's calls and not the other's by chance, moving
    # a per-call figure by tens of thousands of instructions: the calls counted run
    # without the cyclic collector (what they allocate is not collected, only counted).
    gc.collect()
    gc.disable()
    for _ in range(calls):
        fn()


def measure(scenario: str, variant: str, calls: int) -> dict[str, int]:
    """cachegrind's totals for one process running ``calls`` calls after the warm-up."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        env = dict(os.environ, PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
        subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes",
             "--cachegrind-out-file=/dev/null", f"--log-file={log.name}",
             sys.executable, __file__, "--one", scenario, variant, str(calls)],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )
        text = Path(log.name).read_text()
    totals = {}
    for label, name in COUNTERS:
        pattern = r"==\d+==\s+" + r"\s+".join(map(re.escape, label.split())) + r":\s+([\d,]+)"
        found = re.search(pattern, text)
        if found is None:
            raise RuntimeError(f"no {label!r} in cachegrind's output:\n{text[-2000:]}")
        totals[name] = int(found.group(1).replace(",", ""))
    return totals


def per_call(scenario: str, variant: str, calls: int, jobs: int) -> dict[str, float]:
    with ThreadPoolExecutor(jobs) as pool:
        low, high = pool.map(lambda n: measure(scenario, variant, n), (calls, 3 * calls))
    return {name: (high[name] - low[name]) / (2 * calls) for _label, name in COUNTERS}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        scenario, variant, calls = args.one
        run_calls(scenario, variant, int(calls))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: it is what this benchmark counts with")
    names = [name for _label, name in COUNTERS]
    print("| scenario | " + " | ".join(f"{n} added, hand / otel-llm" for n in names) + " | otel-llm / hand, instructions |")
    print("|---|" + "---|" * (len(names) + 1))
    for scenario in args.scenario or SCENARIOS:
        figures = {variant: per_call(scenario, variant, args.calls, args.jobs) for variant in VARIANTS}
        added = {v: {n: figures[v][n] - figures["bare"][n] for n in names} for v in ("hand", "otel-llm")}
        cells = [f"{added['hand'][n] / 1000:.1f}k / {added['otel-llm'][n] / 1000:.1f}k" for n in names]
        ratio = added["otel-llm"]["instructions"] / added["hand"]["instructions"]
        print(f"| {scenario} | " + " | ".join(cells) + f" | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
