"""Timing helpers of `sr_models.profile` that the benchmarks share."""
import itertools

import pytest

from sr_models.profile import interleaved_times


def test_interleaved_rounds_rotate_each_group():
    ran = []
    ticks = itertools.count()
    calls = {name: (lambda name=name: ran.append(name)) for name in "abcde"}
    times = interleaved_times(calls, rounds=3, warmup=1, clock=lambda: next(ticks), group_size=3)
    assert ran == list("abcde" "bcaed" "cabde" "abced")  # groups (a, b, c) and (d, e), rotated by the round
    assert {name: len(samples) for name, samples in times.items()} == dict.fromkeys("abcde", 3)
    assert all(sample == 1 for samples in times.values() for sample in samples)  # one clock tick per call


def test_a_group_size_below_one_fails_in_one_line():
    with pytest.raises(ValueError, match=r"^interleaved_times: group_size=0 must be a positive number of callables$"):
        interleaved_times({"a": lambda: None}, rounds=1, group_size=0)
