"""The overhead benchmarks' own machinery: what decides the 1.3x goal must be right.

No timing is asserted here (figures are measured by hand, BENCHMARKS.md); these tests
check that the benchmarks compare what they say they compare: calls paired with their
scenario by name, unpatched clients that really are unpatched, the three-way verdict,
BENCHMARKS.md sections replaced one at a time, ``--compare`` putting both versions
at paths of the same length, and the per-chunk benchmark's otel-llm variants recording
what the stream carried.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otel_llm import semconv

ROOT = Path(__file__).resolve().parent.parent

# The benchmarks import each other as top-level modules; their folder is on the path only
# while they are imported, so that their names (``reports``, ``collector``, ...) never
# stand in for another module of the same name elsewhere in the test session.
_saved_path = list(sys.path)
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import instrumentation_overhead as overhead
    import paired_overhead as paired
    import stream_chunk_cost as chunk_cost
finally:
    sys.path[:] = _saved_path


def test_calls_are_paired_with_their_scenario_by_name() -> None:
    def ollama_stream() -> str:
        return "ollama stream"

    def openai_sync() -> str:
        return "openai sync"

    def ollama_sync() -> str:
        return "ollama sync"

    def openai_stream() -> str:
        return "openai stream"

    # Given in another order than SCENARIOS: each scenario still gets its own call.
    calls = overhead._by_scenario(ollama_stream, openai_sync, ollama_sync, openai_stream)
    assert list(calls) == list(overhead.SCENARIOS)
    assert {scenario: call() for scenario, call in calls.items()} == {s: s for s in overhead.SCENARIOS}
    with pytest.raises(KeyError):
        overhead._by_scenario(openai_sync, openai_stream, ollama_sync)


def test_unpatched_subclass_carries_the_methods_as_they_were() -> None:
    class Base:
        def send(self) -> str:
            return "original"

    class Client(Base):
        def name(self) -> str:
            return "client"

    before = paired.class_dicts(Client)
    original = Base.send
    Base.send = lambda self: "patched"  # type: ignore[method-assign]
    try:
        plain = paired.unpatched_subclass(Client, before)
        assert plain().send() == "original"
        assert plain().name() == "client"
        assert Client().send() == "patched"  # the patched class itself is left alone
    finally:
        Base.send = original  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="changed nothing"):
        paired.unpatched_subclass(Client, paired.class_dicts(Client))


@pytest.mark.parametrize(
    ("low", "high", "said"),
    [(1.1, 1.3, "met"), (1.31, 1.5, "not met"), (1.2, 1.31, "not decided"), (1.3, 1.3, "met")],
)
def test_goal_verdict_is_met_only_when_the_whole_interval_is_within(low: float, high: float, said: str) -> None:
    assert overhead.verdict(low, high) == said


def test_median_ratio_interval_holds_the_median() -> None:
    ratios = [1.1, 1.2, 1.25, 1.3, 1.6, 1.22, 1.27, 1.24]
    middle, low, high = overhead.median_ratio_interval(ratios)
    assert low <= middle <= high
    assert middle == pytest.approx(1.245)
    assert min(ratios) <= low and high <= max(ratios)
    assert overhead.median_ratio_interval([1.4]) == (1.4, 1.4, 1.4)
    assert overhead.median_ratio_interval(ratios) == (middle, low, high)  # seeded: repeatable


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(
        "# Benchmarks\n\n## Paired per-call overhead\n\nold figures\n\n"
        "## Paired per-call overhead, by hand\n\nkept\n\n## Route stats\n\nkept too\n"
    )
    overhead.write_section("## Paired per-call overhead\n\nnew figures\n", path, "## Paired per-call overhead")
    text = path.read_text()
    assert "new figures" in text and "old figures" not in text
    assert text.count("kept") == 2  # a section whose heading only starts the same is another one
    assert text.index("new figures") < text.index("## Paired per-call overhead, by hand")
    overhead.write_section("## Collector\n\nappended\n", path, "## Collector")
    assert path.read_text().rstrip().endswith("appended")


def test_paired_worker_checks_its_variants_and_reports_every_scenario() -> None:
    """A worker refuses to measure when a bare call ends a span or an instrumented one
    does not (``_check_spans``); here it measures, so the variants are what they claim."""
    figures = overhead.run_json_worker(
        str(ROOT / "benchmarks" / "paired_overhead.py"), ["--worker", "--rounds", "3", "--seed", "1", "--no-pin"],
    )
    assert list(figures) == list(overhead.SCENARIOS)
    for scenario in overhead.SCENARIOS:
        assert set(figures[scenario]) == {"bare", "hand", "otel-llm"}
        assert figures[scenario]["bare"] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--compare", "HEAD"], "leave out --compare"), (["--scenario", "openai sync"], "leave out --scenario")],
)
def test_paired_benchmark_rejects_write_with_a_partial_or_compared_run(options: list[str], message: str) -> None:
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "paired_overhead.py"), "--write", *options],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # nothing written


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_compare_puts_both_versions_side_by_side_at_paths_of_the_same_length() -> None:
    with paired._side_by_side("HEAD") as (this, base):
        assert this.parent == base.parent
        assert len(str(this)) == len(str(base))
        for tree in (this, base):
            assert (tree / "otel_llm" / "__init__.py").is_file()
            assert (tree / "benchmarks" / "paired_overhead.py").is_file()
        assert not list(this.rglob("__pycache__"))
        parent = this.parent
    assert not parent.exists()
    listed = subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert str(base) not in listed
    with pytest.raises(SystemExit, match="cannot check out 'no-such-ref'"):
        with paired._side_by_side("no-such-ref"):
            pass
    first = subprocess.run(["git", "-C", str(ROOT), "rev-list", "--max-parents=0", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.split()[0]
    with pytest.raises(SystemExit, match="has no benchmarks/paired_overhead.py"):
        with paired._side_by_side(first):
            pass
    after = subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"],
                           capture_output=True, text=True, check=True).stdout
    assert after == listed  # the refused checkout left no worktree behind


def test_worker_failure_is_reported_with_its_error(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("raise SystemExit('no clients here')\n")
    with pytest.raises(RuntimeError, match="no clients here"):
        overhead.run_json_worker(str(script), [], "a broken worker")
    script.write_text(f"print({json.dumps(json.dumps({'x': 1}))})\n")
    assert overhead.run_json_worker(str(script), []) == {"x": 1}


@pytest.mark.parametrize(("build", "output_tokens"), [
    (chunk_cost.ollama_chunks, 11),  # the final chunk's eval_count: one per chunk of text before it
    (chunk_cost.openai_chunks, 9),  # the usage chunk's completion_tokens: one per chunk of text
], ids=["ollama", "openai"])
def test_per_chunk_benchmark_wrappers_record_every_stream_they_time(build, output_tokens, spans) -> None:
    """The otel-llm variants of ``stream_chunk_cost.py`` read each chunk as instrumented
    streams are read: a sync and an async stream each end one span with the stream's
    finish reason and output token count."""
    chunks = build(12)
    chunk_cost.make_wrapped()(iter(chunks))
    asyncio.run(chunk_cost.make_wrapped_async()(chunk_cost._yield_each(chunks)))
    ended = spans.get_finished_spans()
    assert len(ended) == 2
    for span in ended:
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == output_tokens
        assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
