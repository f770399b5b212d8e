"""Latency ratios of models timed call by call in one process, in a new random order each round.

On a shared CPU the machine's speed drifts within seconds, so two models timed in separate
processes or separate blocks of calls differ by more than what is measured. Timing one call of
each model per round and taking the ratio within the round cancels the drift; shuffling the
order every round removes the position bias (a model timed right after a larger one starts with
colder caches: timing the same model twice in a fixed order gave a ratio of 1.045).
"""

from __future__ import annotations

import random
import statistics
import time
import timeit
from typing import Any, Callable, Dict, List, Mapping

CLOCKS: Dict[str, Callable[[], float]] = {
    "wall": timeit.default_timer,
    # CPU time of the calling thread: not the time it was descheduled, but no other thread's
    "thread": time.thread_time,
}


def time_paired(
    fns: Mapping[str, Callable[[], Any]],
    rounds: int,
    warmup: int = 10,
    clock: str = "wall",
    seed: int = 0,
) -> Dict[str, List[float]]:
    """Milliseconds of one call of every function per round, the order shuffled every round.

    Args:
        fns (Mapping[str, Callable[[], Any]]): What to time, by name.
        rounds (int): Rounds; entry ``i`` of every list comes from round ``i``.
        warmup (int): Untimed calls of each function first. Defaults to 10.
        clock (str): A key of :data:`CLOCKS`. Defaults to ``'wall'``.
        seed (int): Seed of the shuffles. Defaults to 0.

    Returns:
        dict[str, list[float]]: The times of each function, round by round.
    """
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be at least 1 and warmup at least 0, got {rounds}, {warmup}")
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    timer = CLOCKS[clock]
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    order = list(fns)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start = timer()
            fns[name]()
            times[name].append(1e3 * (timer() - start))
    return times


def paired_ratio(numerator: List[float], denominator: List[float]) -> Dict[str, float]:
    """The median and quartiles of the round-by-round ratios ``numerator[i] / denominator[i]``.

    Args:
        numerator (list[float]): Times from :func:`time_paired`.
        denominator (list[float]): Times of the same rounds.

    Returns:
        dict[str, float]: ``median``, ``q1`` and ``q3``.
    """
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(
            f"paired ratios need two equally long, non-empty series; got {len(numerator)} and "
            f"{len(denominator)} times"
        )
    ratios = [a / b for a, b in zip(numerator, denominator)]
    q1, median, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"median": median, "q1": q1, "q3": q3}
