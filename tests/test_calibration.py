"""The fitted constants in core/ are what the committed calibration scripts fit today.

A change to the model or the reference set that moves a fit fails here until the script is rerun
and the constant updated with it, so no constant drifts from the records it names.
"""

from __future__ import annotations

import statistics

from bench import calibrate_reserve, calibrate_vllm
from core.calibration import FITTED
from core.engines.base import MIB


def test_vllm_profiling_constants_are_the_fit() -> None:
    by_era = calibrate_vllm.points()
    assert calibrate_vllm.fit(by_era[False]) == FITTED.profile
    old = calibrate_vllm.fit(by_era[True])
    # The 0.11 records are all sampler-bound, so their dense-forward term is not identified
    # and core keeps the current one (docs/accuracy.md); the other two are the fit.
    assert (old.sampler_bytes, old.base_bytes) == (FITTED.profile_up_to_0_11.sampler_bytes,
                                                   FITTED.profile_up_to_0_11.base_bytes)


def test_vllm_non_torch_constants_are_the_logged_medians() -> None:
    for era, rows in calibrate_vllm.non_torch_groups().items():
        median = statistics.median(b for _, b in rows)
        assert abs(median - calibrate_vllm.NON_TORCH_CONSTANTS[era]) <= 10 * MIB, era


def test_transformers_growth_reserve_is_the_fit() -> None:
    data = calibrate_reserve.points()
    fitted = [p for p in data if p.id in calibrate_reserve.FIT_IDS]
    assert round(calibrate_reserve.factor(fitted), 2) == FITTED.growth_reserve
    assert len(data) > len(fitted)  # there are held-out records to show it on
