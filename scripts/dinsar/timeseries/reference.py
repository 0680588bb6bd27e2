"""Where the time series is held at 0 when ``timeseries.reference_point: auto``.

MintPy's own ``auto`` picks a *random* pixel above a coherence (reference_point.py, unseeded):
two runs of the same stack would differ, and the pixel may sit on the deforming area, which then
shows as the whole map moving the other way. Instead:

* MintPy is given a fixed pixel (:func:`most_coherent_pixel`): with data in the most pairs and
  the highest mean coherence, so its inversion is reproducible;
* the export then moves the reference to the most *stable* pixel (:func:`stable_pixel`): the
  reliable pixel whose displacement history is closest to the area's median history. Most of an
  area is usually stable ground, so the far field reads 0 and the reference is an ordinary
  pixel of it, not the median of a surface. A given ``[lat, lon]`` is used as it is.

Both are pure given the rasters they read; re-referencing is a subtraction per date (MintPy's
inversion and its velocity fit are linear in it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..products.spec import ProductError


def most_coherent_pixel(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """(row, col) of the pixel with data in the most pairs, and among those the highest mean
    coherence: MintPy needs its reference pixel in every pair it keeps (a pair decorrelated
    as a whole, which MintPy's network step drops, has data nowhere).

    ``pairs``: (coherence, valid) of each pair, on one grid; ties go to the first pixel in row
    order, so the choice is reproducible.
    """
    total: np.ndarray | None = None
    count: np.ndarray | None = None
    for coherence, valid in pairs:
        ok = valid & np.isfinite(coherence)
        values = np.where(ok, coherence, 0.0).astype(np.float64)
        total = values if total is None else total + values
        count = ok.astype(np.int64) if count is None else count + ok
    if total is None or count is None or not count.any():
        raise ProductError(
            "no pixel has data in any pair, so MintPy has no reference pixel: lower "
            "products.coherence_threshold, or check the pairs' coherence"
        )
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    # the count first (the mean coherence is below 1), then the coherence
    score = np.where(count > 0, count + np.clip(mean, 0.0, 0.999999), -np.inf)
    row, col = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(row), int(col)


def stable_pixel(read_date: Callable[[int], np.ndarray], dates: int,
                 candidates: np.ndarray) -> tuple[int, int]:  # fmt: skip
    """(row, col) of the candidate pixel whose history is closest (least squares) to the
    candidates' median history.

    ``read_date(i)``: date i's displacement (any common reference); one date is in memory at a
    time, read twice. ``candidates``: the reliable pixels (temporal coherence, mask).
    """
    if not candidates.any():
        raise ProductError(
            "no reliable pixel to hold the time series at 0: lower "
            "timeseries.min_temporal_coherence, or give timeseries.reference_point [lat, lon]"
        )
    medians = []
    for index in range(dates):
        values = read_date(index)
        ok = candidates & np.isfinite(values)
        medians.append(float(np.median(values[ok])) if ok.any() else 0.0)
    cost = np.zeros(candidates.shape, dtype=np.float64)
    for index in range(dates):
        values = read_date(index).astype(np.float64)
        cost += np.where(np.isfinite(values), (values - medians[index]) ** 2, np.inf)
    cost = np.where(candidates, cost, np.inf)
    row, col = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return int(row), int(col)
