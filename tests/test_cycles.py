"""The unwrapped phase without the filter's bias (dinsar.products.cycles), on synthetic arrays."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from dinsar.products.cycles import MAX_RESIDUAL, cycle_count, transfer_cycles  # noqa: E402

TWO_PI = 2 * math.pi


def bump(shape: tuple[int, int], peak: float) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    r0, c0 = shape[0] / 2, shape[1] / 2
    return peak * np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * (shape[0] / 6) ** 2))


def test_cycle_count_takes_whole_cycles_and_leaves_the_residual() -> None:
    filtered = np.array([0.0, 0.4, TWO_PI * 3 - 0.2, -TWO_PI * 2 + 1.0, 7.0])
    wrapped = np.array([0.1, 0.0, 0.1, 1.2, 7.0 - TWO_PI])
    cycles, residual = cycle_count(filtered, wrapped)
    assert cycles.tolist() == [0, 0, 3, -2, 1]
    np.testing.assert_allclose(residual, [-0.1, 0.4, -0.3, -0.2, 0.0], atol=1e-12)


def test_the_filters_loss_is_taken_out_and_triplets_close() -> None:
    """A bump of about a cycle; the 'filter' keeps 80 % of the 12-day phase and 92 % of the
    24-day phase (the real stack's losses), beside snaphu's whole-cycle offset; the transferred
    phases are the truth, and close."""
    shape = (64, 64)
    truth = {"12": bump(shape, 3.0), "24": bump(shape, 6.0)}  # rad
    rng = np.random.default_rng(1)
    amplitude = rng.uniform(10, 100, size=shape)
    out = {}
    for key, keep in (("12", 0.80), ("24", 0.92)):
        ifg = (amplitude * np.exp(1j * truth[key])).astype(np.complex64)
        offset = TWO_PI * 2  # snaphu's arbitrary whole-cycle offset stays as it is
        filtered = (keep * truth[key] + offset).astype(np.float32)
        transfer = transfer_cycles(filtered, ifg, np.full(shape, 0.9), 0.3)
        assert not transfer.ambiguous.any() and np.isfinite(transfer.phase).all()
        np.testing.assert_allclose(transfer.phase, truth[key] + offset, atol=1e-5)
        out[key] = transfer.phase - offset
    # a 12 + 12 - 24 triplet closes to float precision (the filtered one by 0.12 * 12 days)
    closure = out["12"] + out["12"] - out["24"]
    assert np.abs(closure).max() < 1e-5


def test_no_data_low_coherence_unconnected_and_ambiguous_pixels_are_masked() -> None:
    filtered = np.array([[0.1, np.nan, 0.2, 0.3, 2.0, 0.0]], dtype=np.float32)
    ifg = np.exp(1j * np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])).astype(np.complex64)
    ifg[0, 5] = 0  # no interferogram
    coherence = np.array([[0.9, 0.9, 0.1, 0.9, 0.9, 0.9]])
    components = np.array([[1, 1, 1, 0, 1, 1]], dtype=np.uint8)
    transfer = transfer_cycles(filtered, ifg, coherence, 0.3, components)
    assert np.isfinite(transfer.phase).tolist() == [[True, False, False, False, False, False]]
    assert transfer.phase[0, 0] == pytest.approx(0.0)
    assert transfer.no_data.tolist() == [[False, True, False, False, False, True]]
    assert transfer.incoherent.tolist() == [[False, False, True, False, False, False]]
    assert transfer.unconnected.tolist() == [[False, False, False, True, False, False]]
    assert transfer.ambiguous.tolist() == [[False, False, False, False, True, False]]
    assert 2.0 > MAX_RESIDUAL
    # each masked pixel has one reason
    reasons = np.stack([transfer.no_data, transfer.incoherent, transfer.unconnected,
                        transfer.ambiguous])  # fmt: skip
    assert (reasons.sum(axis=0) <= 1).all()


def test_decorrelated_patch_is_masked_not_silently_wrong() -> None:
    """Pure noise in the unfiltered interferogram where the coherence is low: no value there."""
    shape = (40, 40)
    truth = bump(shape, 6.0)
    rng = np.random.default_rng(7)
    ifg = np.exp(1j * truth).astype(np.complex64)
    coherence = np.full(shape, 0.95)
    patch = (slice(5, 15), slice(5, 15))
    ifg[patch] = np.exp(1j * rng.uniform(-np.pi, np.pi, size=(10, 10)))
    coherence[patch] = 0.15
    transfer = transfer_cycles(0.85 * truth, ifg, coherence, 0.3)
    assert np.isnan(transfer.phase[patch]).all()
    outside = np.ones(shape, dtype=bool)
    outside[patch] = False
    np.testing.assert_allclose(transfer.phase[outside], truth[outside], atol=1e-5)


def test_without_coherence_or_components_only_the_residual_decides() -> None:
    filtered = np.array([0.0, 3.0], dtype=np.float32)
    ifg = np.array([1.0, 1.0], dtype=np.complex64)
    transfer = transfer_cycles(filtered, ifg, None, 0.3, None)
    assert transfer.phase[0] == 0.0 and np.isnan(transfer.phase[1])
    assert transfer.ambiguous.tolist() == [False, True]
