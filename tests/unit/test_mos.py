"""The E-model estimate (ITU-T G.107, simplified): its published anchor points, and that it
falls as loss and delay grow."""

from __future__ import annotations

import pytest

from softphone.media.mos import estimate_mos, mos_from_r, r_factor


@pytest.mark.parametrize(("r", "mos"), [(93.2, 4.41), (80.0, 4.02), (70.0, 3.6),
                                        (50.0, 2.58), (0.0, 1.0), (100.0, 4.5)])
def test_r_maps_to_mos_as_g107_annex_b_gives(r: float, mos: float) -> None:
    assert mos_from_r(r) == pytest.approx(mos, abs=0.01)


def test_g711_with_concealment_loses_what_g113_says_at_5_percent() -> None:
    # Ie_eff = 95 * 5 / (5 + 25.1) = 15.78; no delay impairment below 177.3 ms but 0.024 d
    assert r_factor("pcmu", 0.05, 0.0) == pytest.approx(93.2 - 15.78, abs=0.01)


def test_the_estimate_falls_with_loss_and_delay() -> None:
    clean = estimate_mos("pcmu", 1000, 0, 1.0, 2.0)
    lossy = estimate_mos("pcmu", 950, 50, 1.0, 2.0)
    late = estimate_mos("pcmu", 1000, 0, 1.0, 600.0)
    assert clean is not None and lossy is not None and late is not None
    assert clean >= 4.3 and 3.5 < lossy < clean and late < clean
    assert estimate_mos("opus", 0, 0, 0.0, None) is None  # nothing heard: nothing to judge
