"""Metadata figures from an engine's numbers: error_score_stats equal to the statistics module's, to the bit."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest

from shared.domain.dataset_build import _score_stats
from shared.domain.dataset_facts import score_stats

FLOATS = [0.0, -0.0, 1.0, 0.5, 0.1, 1e-5, 5e-324, 2.2250738585072014e-308, 1e300, -1e300, 0.30000000000000004]


def samples(seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    data = [[], [0.7], [0.1] * 9, [0.0, -0.0], [-0.0, 0.0], FLOATS]
    for _ in range(60):
        size = rng.choice([2, 3, 10, 100, 2000])
        kind = rng.random()
        if kind < 0.4:
            data.append([rng.random() for _ in range(size)])
        elif kind < 0.6:
            data.append([round(rng.random(), 2) for _ in range(size)])
        elif kind < 0.8:
            data.append([rng.choice(FLOATS) for _ in range(size)])
        else:
            data.append([rng.uniform(-1, 1) * 10.0 ** rng.randrange(-300, 300) for _ in range(size)])
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_score_stats_equal_the_builds_statistics(seed: int) -> None:
    for scores in samples(seed):
        # repr: 0.0 and -0.0 are equal floats but not the same metadata bytes
        assert repr(score_stats(np.array(scores, dtype=np.float64))) == repr(_score_stats(scores)), scores


def test_score_stats_of_a_large_sample_match_pstdev() -> None:
    scores = np.random.default_rng(4).random(200_000)
    stats = score_stats(scores)
    assert stats["std"] == statistics.pstdev(scores.tolist())
    assert stats["mean"] == statistics.fmean(scores.tolist())
