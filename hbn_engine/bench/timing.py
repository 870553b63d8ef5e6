"""Wall-clock timing with medians: robust to the noise of a shared machine."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Timing:
    samples: tuple[float, ...]  # seconds per call

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        s = sorted(self.samples)
        return s[len(s) // 4], s[(3 * len(s)) // 4]

    @property
    def runs(self) -> int:
        return len(self.samples)


def time_callable(
    fn: Callable[[], object],
    *,
    min_time: float = 0.5,
    min_runs: int = 5,
    max_runs: int = 200,
    warmup: int = 2,
    max_time: float = 30.0,
) -> Timing:
    """Call ``fn`` until both ``min_runs`` calls and ``min_time`` seconds have passed.

    Warm-up calls (first-touch allocation, lazy buffer planning, caches) are not counted.
    ``max_time`` bounds slow configurations: at least 3 samples are still taken.
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_runs:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if len(samples) >= min_runs and elapsed >= min_time:
            break
        if len(samples) >= 3 and elapsed >= max_time:
            break
    return Timing(tuple(samples))
