"""tools/analysis/compare_backbone.py and the paired timing behind it: one call of each model per
round, in a shuffled order, and ratios taken within the round. Checks are on what is called and
how the table is made, never on timings."""

from __future__ import annotations

from pathlib import Path

import pytest
from text_tables import table_cells
from tool_runner import load_tool

from edgenext_dense.analysis.paired_timing import paired_ratio, time_paired

REPO = Path(__file__).resolve().parents[2]


def main(argv: list) -> int:
    """``tools/analysis/compare_backbone.py``'s ``main`` (``tools/`` is not a package)."""
    return load_tool("tools/analysis/compare_backbone.py").main(argv)


def test_each_function_runs_once_a_round_in_a_shuffled_order() -> None:
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = time_paired(fns, rounds=20, warmup=2, clock="thread")
    assert {name: len(series) for name, series in times.items()} == {"a": 20, "b": 20, "c": 20}
    assert all(t >= 0 for series in times.values() for t in series)
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]  # the warm-up, model by model
    rounds = [tuple(calls[i : i + 3]) for i in range(6, len(calls), 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len(set(rounds)) > 1  # not one fixed order
    assert time_paired(fns, rounds=20, warmup=0, seed=0).keys() == times.keys()


def test_ratios_are_taken_within_each_round() -> None:
    # the machine halves its speed in rounds 3-4: a within-round ratio does not see it
    ours, ref = [1.0, 1.0, 2.0, 2.0], [2.0, 2.0, 4.0, 4.0]
    assert paired_ratio(ours, ref) == {"median": 0.5, "q1": 0.5, "q3": 0.5}
    r = paired_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    assert r["median"] == 3.0 and r["q1"] < 3.0 < r["q3"]
    assert paired_ratio([3.0], [2.0]) == {"median": 1.5, "q1": 1.5, "q3": 1.5}


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        time_paired({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="clock must be one of"):
        time_paired({"a": lambda: None}, rounds=1, clock="cpu")
    with pytest.raises(ValueError, match="equally long, non-empty"):
        paired_ratio([1.0], [1.0, 2.0])


def test_command_line_sets_ours_and_fused_beside_mmpretrain(capsys) -> None:
    argv = ["--arch", "xx_small", "--shape", "64", "64", "--threads", "1", "--clock", "thread"]
    assert main([*argv, "--rounds", "3", "--warmup", "1"]) == 0
    printed = capsys.readouterr().out
    assert "EdgeNeXt xx_small at 64x64, 1 thread(s), 3 rounds, thread clock" in printed
    header, rows = table_cells(printed, "model")
    assert header == ["model", "median ms", "/ mmpretrain, median of the rounds (quartiles)"]
    assert [r[0] for r in rows] == ["ours", "ours, fuse()d", "mmpretrain"]
    assert rows[2][2] == "1.000 (1.000-1.000)"
    assert all(float(r[1]) > 0 for r in rows)


def test_command_line_refuses_the_thread_clock_on_two_threads(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--threads", "2", "--clock", "thread"])
    assert "use it with --threads 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--rounds", "0"])
    assert "must be positive" in capsys.readouterr().err
