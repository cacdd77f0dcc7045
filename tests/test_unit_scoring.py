"""Unit tests of scoring.metrics: top-k correctness, competition ranks, the Wilson interval and
the exact McNemar test. Expected values come from numpy written here and from scipy.stats
(binomtest's Wilson interval; binomtest on the discordant pairs), never from the module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagenet_bench.scoring import metrics

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("correct, n", [(0, 10), (10, 10), (1, 1), (37, 200), (150, 200), (37_538, 50_000)])
def test_wilson_interval_is_scipys(correct, n):
    want = stats.binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = metrics.wilson_interval(correct, n)
    assert low == pytest.approx(want.low, abs=1e-12) and high == pytest.approx(want.high, abs=1e-12)
    assert 0.0 <= low <= correct / n + 1e-12 and correct / n - 1e-12 <= high <= 1.0  # 1 ulp: p = 1 gives 1 - 2**-53


def test_wilson_interval_of_no_images_is_nan():
    assert all(math.isnan(x) for x in metrics.wilson_interval(0, 0))


def test_wilson_interval_narrows_with_n():
    widths = [np.subtract(*metrics.wilson_interval(n // 2, n)[::-1]) for n in (10, 100, 1000, 10_000)]
    assert widths == sorted(widths, reverse=True)


@pytest.mark.parametrize(
    "only_a, only_b, both, neither",
    [(5, 3, 100, 20), (0, 7, 10, 1), (40, 41, 0, 0), (1, 0, 5, 5), (300, 200, 1000, 500)],
)
def test_mcnemar_exact_is_a_binomial_test_on_the_discordant_pairs(only_a, only_b, both, neither):
    rng = np.random.default_rng(only_a * 1000 + only_b)
    a = np.array([True] * only_a + [False] * only_b + [True] * both + [False] * neither)
    b = np.array([False] * only_a + [True] * only_b + [True] * both + [False] * neither)
    order = rng.permutation(len(a))  # which images they are does not matter
    want = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert metrics.mcnemar_exact(a[order], b[order]) == pytest.approx(want, rel=1e-9)
    assert metrics.mcnemar_exact(b[order], a[order]) == pytest.approx(want, rel=1e-9)  # symmetric


def test_mcnemar_exact_without_discordant_images_is_one():
    same = np.array([True, False, True, True])
    assert metrics.mcnemar_exact(same, same.copy()) == 1.0


@pytest.mark.parametrize(
    "counts, want",
    [
        ([10, 30, 20], [3, 1, 2]),
        ([30, 30, 20, 10], [1, 1, 3, 4]),  # a shared first place skips the second
        ([5, 7, 7, 7, 1], [4, 1, 1, 1, 5]),
        ([4, 4, 4], [1, 1, 1]),
        ([30_001, 30_000, 30_001], [1, 3, 1]),  # exact counts: equal as percentages, not as ranks
        ([], []),
    ],
)
def test_ranks_are_competition_ranks_of_exact_counts(counts, want):
    assert metrics.ranks(counts) == want
    assert metrics.ranks(np.array(counts, dtype=np.int64)) == want
    # 1 + the number of strictly larger counts, written out
    assert want == [1 + sum(other > c for other in counts) for c in counts]


def test_topk_correct_against_numpy():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 1000, 300)
    preds = rng.integers(0, 1000, (300, 5))
    preds[:100, 2] = labels[:100]  # right in the third column
    top1 = preds[np.arange(300), rng.integers(0, 5, 300)]
    correct1, correct5 = metrics.topk_correct(preds, top1, labels)
    assert np.array_equal(correct1, top1 == labels)
    assert np.array_equal(correct5, np.array([labels[i] in preds[i] for i in range(300)]))
    assert correct5[:100].all()
    _, correct2 = metrics.topk_correct(preds, top1, labels, k=2)
    assert np.array_equal(correct2, (preds[:, 0] == labels) | (preds[:, 1] == labels))


def test_topk_correct_without_k_columns_has_no_top_k():
    labels = np.array([1, 2, 3])
    preds = np.array([[1, 0], [0, 2], [5, 6]])
    correct1, correct5 = metrics.topk_correct(preds, preds[:, 0], labels)
    assert correct1.tolist() == [True, False, False] and correct5 is None


def test_cached_property_computes_once_per_instance_and_two_instances_at_once():
    """base.cached.cached_property (used by the per-model arrays the table grades in two
    threads): each instance computes once, and two instances compute at the same time, which
    Python 3.11's functools.cached_property (one lock for all instances) does not allow: there
    the barrier below would time out."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from imagenet_bench.base.cached import cached_property

    both_inside = threading.Barrier(2, timeout=10)
    calls = []

    class Thing:
        @cached_property
        def value(self) -> int:
            calls.append(self)
            both_inside.wait()
            return id(self)

    first, second = Thing(), Thing()
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda thing: thing.value, [first, second]))
    assert found == [id(first), id(second)]
    assert (first.value, second.value) == (id(first), id(second)) and len(calls) == 2  # not computed again
    assert isinstance(Thing.__dict__["value"], cached_property)


def test_a_part_of_the_val_set_comes_first_when_the_full_one_is_absent():
    from imagenet_bench.scoring.score import PredictionSet, display_order

    part = PredictionSet("val", "dataset a", 30, {"test_set": None})
    corrupted = PredictionSet(
        "imagenet-c-regenerated/fog/1", "dataset b", 30, {"test_set": "imagenet-c-regenerated/fog/1"}
    )
    v2 = PredictionSet("imagenetv2-matched-frequency", "dataset c", 30, {"test_set": "imagenetv2-matched-frequency"})
    full = PredictionSet("imagenet-val", "full val", 50_000, None)
    assert [s.name for s in sorted([v2, corrupted, part], key=display_order)] == [part.name, corrupted.name, v2.name]
    assert sorted([part, corrupted, full], key=display_order)[0] is full
