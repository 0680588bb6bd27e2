"""One track's time series end to end: link the pairs' hand-offs, write the template, run
MintPy, export its outputs, draw the figures."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_json, write_text
from ..config import Timeseries
from ..grid import Grid
from ..products.mintpy_handoff import CONNCOMP, CORR, UNW_PHASE
from ..quicklooks.timeseries import plot_history, plot_velocity
from .export import SUMMARY, TimeseriesResult, export_timeseries
from .reference import most_coherent_pixel
from .run import OMP_THREADS, TimeseriesError, link_inputs, run_smallbaseline
from .template import mintpy_template

log = logging.getLogger(__name__)

PAIRS_FOLDER = "pairs"  # the links MintPy loads (not "inputs": MintPy writes its own there)
MINTPY_FOLDER = "mintpy"
TEMPLATE = "dinsar_timeseries.txt"
MINTPY_LOG = "mintpy.log"


def check_reference_point(lat_lon: Sequence[float], handoff_dirs: Mapping[str, Path]) -> None:
    """A given reference point must lie on the pairs' grid (MintPy's own message is a
    traceback)."""
    import rasterio

    lat, lon = lat_lon
    for pair_id, folder in sorted(handoff_dirs.items()):
        for path in sorted(Path(folder).glob(f"*_{UNW_PHASE}.tif")):
            with rasterio.open(path) as ds:
                grid = Grid.from_transform(ds.transform, ds.width, ds.height)
            west, south, east, north = grid.bounds()
            if not (west <= lon < east and south < lat <= north):
                raise TimeseriesError(
                    f"the time series' reference point [{lat}, {lon}] is outside pair "
                    f"{pair_id}'s grid (W {west:.5f}, S {south:.5f}, E {east:.5f}, N {north:.5f}): "
                    "choose a point of stable ground inside it, or reference_point: auto"
                )


def _coherence_of_pairs(handoff_dirs: Mapping[str, Path]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(coherence, valid) of each pair's hand-off, one pair in memory at a time: valid where the
    unwrapped phase, the coherence and snaphu's component have data (HyP3's no data is 0)."""
    import rasterio

    for _pair, folder in sorted(handoff_dirs.items()):
        files = {suffix: next(iter(sorted(Path(folder).glob(f"*_{suffix}.tif"))), None)
                 for suffix in (UNW_PHASE, CORR, CONNCOMP)}  # fmt: skip
        if files[UNW_PHASE] is None or files[CORR] is None:
            raise TimeseriesError(f"{folder} lacks the hand-off's unwrapped phase or coherence: "
                                  "delete the folder and run again to write it anew")  # fmt: skip
        with rasterio.open(files[CORR]) as ds:
            coherence = ds.read(1).astype(np.float64)
        with rasterio.open(files[UNW_PHASE]) as ds:
            valid = ds.read(1) != 0
        valid &= coherence != 0
        if files[CONNCOMP] is not None:
            with rasterio.open(files[CONNCOMP]) as ds:
                valid &= ds.read(1) != 0
        yield coherence, valid


def run_timeseries(handoff_dirs: Mapping[str, Path], out_dir: Path, work_dir: Path,
                   settings: Timeseries, track: str, coherence_threshold: float, *,
                   threads: int = OMP_THREADS) -> TimeseriesResult:  # fmt: skip
    """The time series of ``track`` from its pairs' hand-off folders (pair id -> folder).

    ``work_dir`` gets the links, the template, MintPy's folder (emptied first: MintPy's files
    of an earlier run must not be taken for this one's) and its log; ``out_dir`` the products
    and figures. ``coherence_threshold``: the temporal coherence the "fastest point" needs;
    ``threads``: MintPy's numerical threads (the Snakemake job's ``threads``).
    """
    if len(handoff_dirs) < 2:
        raise TimeseriesError(f"track {track} has {len(handoff_dirs)} pair(s): a time series "
                              "needs at least 3 dates in a connected network")  # fmt: skip
    work_dir, out_dir = Path(work_dir), Path(out_dir)
    if settings.reference_point != "auto":
        check_reference_point(settings.reference_point, handoff_dirs)
    inputs = link_inputs(handoff_dirs, work_dir / PAIRS_FOLDER)
    auto = settings.reference_point == "auto"
    reference_yx = most_coherent_pixel(_coherence_of_pairs(handoff_dirs)) if auto else None
    template = write_text(work_dir / TEMPLATE,
                          mintpy_template(settings, inputs.resolve(), reference_yx))  # fmt: skip
    mintpy_dir = work_dir / MINTPY_FOLDER
    shutil.rmtree(mintpy_dir, ignore_errors=True)
    started = time.perf_counter()
    run_smallbaseline(template, mintpy_dir, work_dir / MINTPY_LOG, threads=threads)
    log.info("MintPy: %.0f s for %d pairs of %s", time.perf_counter() - started,
             len(handoff_dirs), track)  # fmt: skip
    result = export_timeseries(mintpy_dir, out_dir, track=track,
                               coherence_threshold=coherence_threshold,
                               stable_reference=auto)  # fmt: skip
    result.files["velocity_png"] = plot_velocity(out_dir)
    result.files["history_png"] = plot_history(out_dir)
    # the summary (written before the figures, which read it) lists them too
    summary = json.loads((out_dir / SUMMARY).read_text(encoding="utf-8"))
    summary["files"] = {key: path.name for key, path in result.files.items()}
    write_json(out_dir / SUMMARY, summary, indent=2)
    return result
