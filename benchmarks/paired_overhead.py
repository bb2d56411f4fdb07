"""Added time per call of otel-llm's auto-instrumentation, paired call by call (run by hand).

``instrumentation_overhead.py`` times blocks of calls and switches the instrumentation
on and off between them, because the peers it also measures patch the same methods.
Two things in that design are not how an application runs: the client classes change
under the interpreter before every otel-llm block, and otel-llm's figure comes from
other moments than the bare and hand-written ones it is compared with. This script
measures otel-llm alone against the same two baselines without either:

* the instrumentation is installed once, as in an application;
* the ``bare`` and ``hand`` calls go through clients of a subclass made after
  ``instrument()`` that carries, for every method ``instrument()`` replaced on the
  client's classes, the method as it was before: the same client code, not patched
  (checked: a bare call ends no span, the other two end one each);
* each variant has a client of its own (instance and class; the in-process transport is
  shared by all three). A client's own data (its resource objects, options, the type
  caches of its class) is kept warm by the calls made through it: with one client for
  ``bare`` and ``hand``, those two kept it warm for each other and otel-llm's client
  was colder, and the subtraction of the bare call charged that to otel-llm (measured
  against the shared client at -0.007x to -0.078x of the OpenAI stream's ratio, which is
  within ``--compare``'s own noise: the reasoning, not that figure, is why);
* in every round, one call of each variant in random order, each timed alone (CPU time
  of the calling thread), so each otel-llm call is compared with a bare and a
  hand-written call made within a millisecond of it.

Added time of a variant in a worker = median over rounds of (its call - the bare call of
the same round). The ratio is the median of the workers' own otel-llm / hand ratios,
with a bootstrap 95 % interval over the workers, and the same three-way verdict on the
1.3x goal as ``instrumentation_overhead.py``. Same clients, canned answers, in-process
transports and SDK set-up.

    python benchmarks/paired_overhead.py [--rounds 1000] [--runs 8] [--no-pin] [--scenario S ...]
                                         [--write | --compare REF]

``--write`` replaces the "## Paired per-call overhead" section of BENCHMARKS.md.

``--compare REF`` measures this checkout's working files against the commit REF, both
copied side by side into a temporary folder (REF as a git worktree; removed afterwards):
``--runs`` pairs of workers, one of each version per pair, taking turns at going first,
so that both meet the same phases of a shared machine, which move single runs by more
than most changes do. Per scenario it reports each version's median added times and
ratio, and the median over pairs of (this checkout's ratio - REF's), with how many pairs
came out lower. REF must have this option's worker arguments (``--scenario`` included,
when given). Its resolution is coarse: comparing a commit with itself, 8 pairs gave
differences from -0.03x to +0.04x on the OpenAI stream's ratio (see BENCHMARKS.md), so
a smaller difference tells nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrumentation_overhead import (  # noqa: E402
    ROOT, SCENARIOS, _install_sdk, _pin_to_one_cpu, _ratio, bare_calls, hand_calls, make_clients,
    median_ratio_interval, run_json_worker, verdict, write_section,
)

SECTION = "## Paired per-call overhead"
VARIANTS = ("bare", "hand", "otel-llm")
WARM_UP = 30


def class_dicts(cls: type) -> list[dict[str, Any]]:
    """A copy of the namespace of every class in ``cls``'s method resolution order."""
    return [dict(vars(c)) for c in cls.__mro__]


def unpatched_subclass(cls: type, before: list[dict[str, Any]]) -> type:
    """A subclass of ``cls`` holding, for every attribute of its classes that changed since
    ``before`` (:func:`class_dicts` taken earlier), the value it had then: the class's
    methods as they were before instrumentation."""
    originals: dict[str, Any] = {}
    for klass, saved in zip(cls.__mro__, before):
        current = vars(klass)
        for name, value in saved.items():
            if name not in originals and not name.startswith("__") and current.get(name) is not value:
                originals[name] = value
    if not originals:
        raise RuntimeError(f"instrument() changed nothing on {cls.__name__}: nothing to compare with")
    return type(f"Unpatched{cls.__name__}", (cls,), originals)


def _variants() -> tuple[dict[str, dict[str, Callable[[], Any]]], Any]:
    """Per variant, the scenario calls: bare and hand-written on unpatched clients,
    otel-llm on the instrumented ones; and the exporter counting the spans."""
    from otel_llm.instrument import instrument

    exporter = _install_sdk()
    oa, ol = make_clients()
    for call in bare_calls(oa, ol).values():  # the clients load their lazily imported parts
        call()
    before = {type(oa): class_dicts(type(oa)), type(ol): class_dicts(type(ol))}
    instrument()

    def plain_clients() -> tuple[Any, Any]:
        """Clients of a new unpatched subclass each (the same transport and host)."""
        plain_oa = unpatched_subclass(type(oa), before[type(oa)])(
            base_url=str(oa.base_url), api_key=oa.api_key, http_client=oa._client,
        )
        plain_ol_class = unpatched_subclass(type(ol), before[type(ol)])
        plain_ol = plain_ol_class.__new__(plain_ol_class)
        plain_ol.__dict__.update(ol.__dict__)  # the same httpx client and host
        return plain_oa, plain_ol

    variants = {
        "bare": bare_calls(*plain_clients()),
        "hand": hand_calls(*plain_clients(), full=True),
        "otel-llm": bare_calls(oa, ol),
    }
    return variants, exporter


def _check_spans(
    variants: dict[str, dict[str, Callable[[], Any]]], exporter: Any, scenarios: Sequence[str] = SCENARIOS,
) -> None:
    """Each bare call ends no span, each hand-written or otel-llm call one: otherwise the
    unpatched clients are not what this compares."""
    for scenario in scenarios:
        for variant, expected in (("bare", 0), ("hand", 1), ("otel-llm", 1)):
            before = exporter.spans
            variants[variant][scenario]()
            if exporter.spans - before != expected:
                raise RuntimeError(
                    f"{scenario}, {variant}: {exporter.spans - before} spans per call, expected {expected}"
                )


def worker(rounds: int, seed: int, scenarios: Sequence[str] = SCENARIOS) -> dict[str, dict[str, float]]:
    """Per scenario: ``bare`` = median seconds per bare call; ``hand``/``otel-llm`` = the
    median over rounds of (the variant's call - the bare call of the same round)."""
    variants, exporter = _variants()
    _check_spans(variants, exporter, scenarios)
    rng = random.Random(seed)
    clock = time.thread_time_ns
    result: dict[str, dict[str, float]] = {}
    for scenario in scenarios:
        calls = {variant: variants[variant][scenario] for variant in VARIANTS}
        for call in calls.values():
            for _ in range(WARM_UP):
                call()
        times: dict[str, list[int]] = {variant: [] for variant in VARIANTS}
        order = list(VARIANTS)
        for _ in range(rounds):
            rng.shuffle(order)
            for variant in order:
                call = calls[variant]
                start = clock()
                call()
                times[variant].append(clock() - start)
        bare = times["bare"]
        result[scenario] = {"bare": statistics.median(bare) / 1e9}
        for variant in ("hand", "otel-llm"):
            result[scenario][variant] = statistics.median(a - b for a, b in zip(times[variant], bare)) / 1e9
    return result


def _run_worker(
    rounds: int, seed: int, pin: bool, scenarios: Sequence[str] | None = None, root: Path = ROOT,
) -> dict[str, dict[str, float]]:
    """One worker process of the version of the project in ``root``; ``scenarios`` None: all."""
    args = ["--worker", "--rounds", str(rounds), "--seed", str(seed)] + ([] if pin else ["--no-pin"])
    for scenario in scenarios or ():
        args += ["--scenario", scenario]
    script = root / "benchmarks" / Path(__file__).name
    return run_json_worker(str(script), args, f"worker of {root}", root)  # type: ignore[no-any-return]


#: What a worker of another version needs from its tree: the package and the benchmarks.
_WORKER_PARTS = ("otel_llm", "benchmarks")


@contextlib.contextmanager
def _side_by_side(ref: str) -> Iterator[tuple[Path, Path]]:
    """This checkout's working files and the commit ``ref``, side by side in one temporary
    folder (``<tmp>/this`` and ``<tmp>/base``), removed afterwards.

    Both versions run from paths of the same length, so that the only difference between
    the two sides is the code: a process's paths (its ``PYTHONPATH``, its environment's
    size, its code's file names) move where things land in memory, a known source of
    steady differences between builds of the same code.
    """
    parent = Path(tempfile.mkdtemp(prefix="otel-llm-compare-"))
    this, base = parent / "this", parent / "base"
    added = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), ref],
        capture_output=True, text=True, check=False,
    )
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise SystemExit(f"cannot check out {ref!r} to compare with: {added.stderr.strip()}")
    try:
        if not (base / "benchmarks" / Path(__file__).name).exists():
            raise SystemExit(f"{ref!r} has no benchmarks/{Path(__file__).name} to compare with")
        for part in _WORKER_PARTS:
            shutil.copytree(ROOT / part, this / part, ignore=shutil.ignore_patterns("__pycache__"))
        yield this, base
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                       capture_output=True, check=False)
        shutil.rmtree(parent, ignore_errors=True)


def compare_report(pairs: list[tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]], ref: str) -> str:
    """This checkout against ``ref``: (this, ref) worker results per pair, as markdown."""
    lines = [
        f"| scenario | hand-written: added µs, this checkout / {ref} | otel-llm: added µs, this checkout / {ref} "
        f"| this checkout: otel-llm / hand | {ref}: otel-llm / hand | difference, median of pairs | "
        "pairs where this checkout is lower |",
        "|---|---|---|---|---|---|---|",
    ]

    def added(variant: str, side: int, scenario: str) -> str:
        return f"{statistics.median(pair[side][scenario][variant] for pair in pairs) * 1e6:.1f}"

    for scenario in pairs[0][0]:
        ours = [_ratio(mine[scenario]) for mine, _theirs in pairs]
        theirs = [_ratio(their[scenario]) for _mine, their in pairs]
        lower = sum(a < b for a, b in zip(ours, theirs))
        lines.append(
            f"| {scenario} | {added('hand', 0, scenario)} / {added('hand', 1, scenario)} "
            f"| {added('otel-llm', 0, scenario)} / {added('otel-llm', 1, scenario)} "
            f"| {statistics.median(ours):.2f}x | {statistics.median(theirs):.2f}x | "
            f"{statistics.median(a - b for a, b in zip(ours, theirs)):+.3f}x | {lower} / {len(pairs)} |"
        )
    return "\n".join(lines)


def report(runs: list[dict[str, dict[str, float]]], rounds: int, pinned: bool) -> str:
    """The BENCHMARKS.md section (markdown)."""
    header = ["scenario", "bare (µs/call)", "hand-written: added µs", "otel-llm: added µs",
              "otel-llm / hand, median of workers", "95 % interval", "goal 1.3x"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    verdicts: dict[str, int] = {}
    for scenario in runs[0]:
        figures = {v: statistics.median(run[scenario][v] for run in runs) for v in VARIANTS}
        ratios = [_ratio(run[scenario]) for run in runs]
        middle, low, high = median_ratio_interval(ratios)
        said = verdict(low, high)
        verdicts[said] = verdicts.get(said, 0) + 1
        lines.append("| " + " | ".join([
            scenario, f"{figures['bare'] * 1e6:.1f}", f"{figures['hand'] * 1e6:.1f}",
            f"{figures['otel-llm'] * 1e6:.1f}", f"{middle:.2f}x", f"{low:.2f}x-{high:.2f}x", said,
        ]) + " |")
    summary = ", ".join(f"{verdicts[v]} {v}" for v in ("met", "not decided", "not met") if v in verdicts)
    chosen = list(runs[0])
    options = "".join(f' --scenario "{s}"' for s in chosen) if chosen != list(SCENARIOS) else ""
    return "\n".join([
        SECTION,
        "",
        f"`python benchmarks/paired_overhead.py --runs {len(runs)} --rounds {rounds}{options}`: otel-llm installed",
        "once; bare and hand-written calls on subclasses of the clients carrying the methods",
        "as they were before `instrument()`, each variant through a client of its own; in",
        "each round one call of each variant in random order, each timed alone (CPU time of",
        "the calling thread). Added time = median over",
        "rounds of (variant - bare call of the same round); figures: median of the workers;",
        "ratio: median of the workers' own ratios, bootstrap 95 % interval over the workers.",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs (shared machine), "
        + ("each worker pinned to one CPU." if pinned else "workers not pinned to a CPU."),
        "",
        *lines,
        "",
        f"In this run: {summary}.",
        "",
    ])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1000, help="rounds of one call per variant, per scenario")
    parser.add_argument("--runs", type=int, default=8, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--no-pin", action="store_true", help="let the workers run on any CPU")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, dest="scenarios",
        help="measure only this scenario (repeatable; default: all)",
    )
    parser.add_argument("--compare", metavar="REF", help="alternate workers with the commit REF's code (see above)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scenarios = [s for s in SCENARIOS if args.scenarios is None or s in args.scenarios]
    if args.worker:
        if not args.no_pin:
            _pin_to_one_cpu()
        print(json.dumps(worker(args.rounds, args.seed, scenarios)))
        return
    if args.write and args.scenarios is not None:
        parser.error("--write records every scenario: leave out --scenario")
    if args.write and args.compare:
        parser.error("--write records this checkout alone: leave out --compare")
    if args.compare:
        with _side_by_side(args.compare) as (this, other):
            pairs = []
            for seed in range(max(1, args.runs)):
                roots = [this, other] if seed % 2 == 0 else [other, this]
                try:
                    done = {root: _run_worker(args.rounds, seed, not args.no_pin, args.scenarios, root) for root in roots}
                except RuntimeError as exc:
                    raise SystemExit(f"{exc}\n{args.compare} must accept the worker arguments given here") from None
                pairs.append((done[this], done[other]))
        print(compare_report(pairs, args.compare))
        return
    runs = [_run_worker(args.rounds, seed, not args.no_pin, scenarios) for seed in range(max(1, args.runs))]
    text = report(runs, args.rounds, not args.no_pin)
    print(text)
    if args.write:
        write_section(text, section=SECTION)


if __name__ == "__main__":
    main()
