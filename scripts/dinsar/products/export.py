"""The export of one pair: every product the inputs allow, as COGs, plus metadata.json.

The products are a table of passes (:data:`PASSES`): each pass reads one ISCE raster once, in
row windows, and its compute function turns each window into the values of its products. A new
GeoTIFF is a :class:`~dinsar.products.spec.ProductSpec` and a ``*_window`` function in its family
module, and one row here (or one more product in an existing row, if it reads the same input).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..grid import Grid, overlap
from ..records import DemManifest
from .angles import AZIMUTH_ANGLE_SPEC, INCIDENCE_ANGLE_SPEC, angles_window
from .cog import CogWriter, ProductRows, gdal_env, window_rows
from .coherence import COHERENCE_MASK_SPEC, COHERENCE_SPEC, coherence_window
from .components import CONNECTED_COMPONENTS_SPEC, connected_components_window
from .context import ExportContext
from .cycles import unwrapped_phase_window
from .displacement import (
    FILTERED_UNWRAPPED_PHASE_SPEC,
    LOS_DISPLACEMENT_SPEC,
    UNWRAPPED_PHASE_SPEC,
    filtered_unwrapped_phase_window,
    los_displacement_window,
    reference_tags,
)
from .isce_input import (
    ISCE_INPUTS,
    IsceRowReader,
    PlacedRowReader,
    find_merged_inputs,
    read_wavelength,
)
from .metadata import (
    METADATA,
    PairInfo,
    export_metadata,
    isce_bperp,
    pair_info_from_workdir,
    write_metadata,
)
from .mintpy_handoff import run_record
from .phase_sigma import PHASE_SIGMA_SPEC, phase_sigma_window
from .reference import REFERENCE_BLOCK, parse_reference
from .spec import ProductError, ProductSpec
from .wrapped import WRAPPED_PHASE_SPEC, wrapped_phase_window

log = logging.getLogger(__name__)

WindowCompute = Callable[[np.ndarray, int, ExportContext], dict[str, np.ndarray]]


@dataclass(frozen=True)
class ProductPass:
    """One input raster read window by window into the products computed from it."""

    # What the pass reads: an ISCE input (a MergedInputs field) or a product of an earlier pass
    # (its full-resolution values); the pass is skipped without it.
    source: str
    products: tuple[ProductSpec, ...]
    # (input bands of the window, its first row, the export's context) -> {product key: values}
    compute: WindowCompute
    bytes_per_pixel: int  # input + outputs + temporaries, counted against the memory budget
    # Windows start on reference blocks, for the passes that gather block statistics.
    whole_blocks: bool = True
    # Runs before the first window once the earlier passes are done; returns tags for the products.
    prepare: Callable[[ExportContext], dict[str, str]] | None = None
    # Rule outputs only: the geocode list must also hold these inputs (expected_products).
    also_listed: tuple[str, ...] = ()
    # Products of earlier passes read over the same windows (ctx.companions, by key); those
    # that were not made are left out.
    companions: tuple[str, ...] = ()


# In order: unw first (its validity decides the conncomp's nodata), then conncomp and cor (block
# statistics for the automatic reference), then the unwrapped phase without the filter's bias
# (dinsar.products.cycles: the unfiltered interferogram plus the filtered unwrap's whole cycles,
# masked by coherence and components), then the displacement, which needs the reference.
PASSES: tuple[ProductPass, ...] = (
    ProductPass("unw", (FILTERED_UNWRAPPED_PHASE_SPEC,), filtered_unwrapped_phase_window,
                8 + 4 + 4 + 2),
    ProductPass("conncomp", (CONNECTED_COMPONENTS_SPEC,), connected_components_window,
                1 + 1 + 4 + 2, also_listed=("unw",)),
    ProductPass("cor", (COHERENCE_SPEC, COHERENCE_MASK_SPEC), coherence_window, 8 + 4 + 1 + 6),
    ProductPass("ifg", (UNWRAPPED_PHASE_SPEC,), unwrapped_phase_window, 8 + 4 + 4 + 1 + 4 + 8 * 6,
                also_listed=("unw", "cor"),
                companions=("filtered_unwrapped_phase", "coherence", "connected_components")),
    ProductPass("unwrapped_phase", (LOS_DISPLACEMENT_SPEC,), los_displacement_window, 4 + 4 + 4,
                whole_blocks=False, prepare=reference_tags),
    ProductPass("flat", (WRAPPED_PHASE_SPEC,), wrapped_phase_window, 8 + 4 + 6),
    ProductPass("phsig", (PHASE_SIGMA_SPEC,), phase_sigma_window, 4 + 4 + 2),
    ProductPass("los", (INCIDENCE_ANGLE_SPEC, AZIMUTH_ANGLE_SPEC), angles_window, 8 + 8 + 4),
)  # fmt: skip


@dataclass
class ExportResult:
    outdir: Path
    files: dict[str, Path]
    metadata: dict[str, Any]


def expected_products(geocoded: Sequence[str]) -> dict[str, str]:
    """Product key -> file name, for the topsApp geocode-list entries that exist."""
    entries = {e.removeprefix("merged/") for e in geocoded}
    available = {key for key, (names, _) in ISCE_INPUTS.items() if entries & set(names)}
    out: dict[str, str] = {}
    for step in PASSES:
        if step.source in available and available.issuperset(step.also_listed):
            out.update({spec.key: spec.filename for spec in step.products})
            available.update(spec.key for spec in step.products)
    return out


def export_pair(
    workdir: str | Path,
    outdir: str | Path,
    *,
    pair_info: PairInfo | None = None,
    reference_point: str | Sequence[float] | None = None,
    coherence_threshold: float = 0.3,
    wavelength_fallback: float | None = None,
    memory_budget_mb: int = 192,
    threads: int = 2,
    dem: DemManifest | None = None,
    track_grid: Grid | None = None,
) -> ExportResult:
    """Turn a topsApp run directory's geocoded output into the pair's COG products.

    Writes every product present in the inputs plus ``metadata.json`` into ``outdir``. Files are
    written under temporary names and moved into place only when complete. Each pass reads its
    input once, in row windows; while one pass runs, the products of the previous one are
    translated to COGs in a worker thread (GDAL releases the GIL), which keeps both CPUs busy.

    ``track_grid`` (dinsar.dem.track_grid_for): every product is written on it, the pair's
    rasters copied in at their whole-pixel offset and no data where they do not reach; a pair
    grid off its lattice (another posting, a fraction of a pixel) is refused, never resampled.
    Without it the products keep the pair's own grid.
    """
    workdir, outdir = Path(workdir), Path(outdir)
    inputs = find_merged_inputs(workdir)
    wavelength, wavelength_source = read_wavelength(workdir, wavelength_fallback)
    reference = parse_reference(reference_point)
    if not 0 <= coherence_threshold <= 1:
        raise ProductError(f"coherence threshold {coherence_threshold} must be within 0..1")
    info = pair_info or pair_info_from_workdir(workdir)
    if info.bperp_m is None:  # the search had no baselines: ISCE's own computation
        info.bperp_m, info.bperp_source = isce_bperp(workdir)
    outdir.mkdir(parents=True, exist_ok=True)

    readers = {name: IsceRowReader(path) for name, path in inputs.present().items()}
    grid = next(iter(readers.values())).grid
    for name, reader in readers.items():
        if not reader.grid.same_as(grid):
            raise ProductError(
                f"{reader.path.name} is on a different grid ({reader.grid}) than the other "
                f"geocoded products ({grid}); re-run topsApp's geocode for all of them"
            )
        bands = ISCE_INPUTS[name][1]
        if reader.image.bands != bands:
            raise ProductError(
                f"{reader.path.name} has {reader.image.bands} band(s), ISCE writes "
                f"{bands}; the file is not topsApp output"
            )
    grid, sources, placement = _place(readers, grid, track_grid)
    if reference is not None and (inputs.unw is None or (inputs.cor is None and reference == "auto")):
        raise ProductError(
            "a reference point needs the unwrapped phase"
            + (" and the coherence" if reference == "auto" else "")
            + f" in {workdir}/merged/; set the reference point to null"
        )

    settings = {"wavelength": wavelength, "threshold": coherence_threshold}
    common_tags = {
        "PAIR": info.pair,
        "REFERENCE_DATE": info.reference or "",
        "SECONDARY_DATE": info.secondary or "",
        "TRACK": info.track or "",
        "ORBITS": ",".join(f"{d}:{t}" for d, t in sorted(info.orbits.items())),
        "SOURCE": "ISCE2 topsApp geocoded products, exported by dInSAR-Toolkit",
    }
    created: list[CogWriter] = []
    futures: list[Future[Path]] = []
    pool = ThreadPoolExecutor(max_workers=max(1, threads - 1))
    try:
        with gdal_env(), ExportContext(outdir, grid, inputs, wavelength, coherence_threshold,
                                       reference) as ctx:  # fmt: skip
            unconverted: dict[str, CogWriter] = {}  # closed, not yet translated
            for index, step in enumerate(PASSES):
                if step.source in sources:
                    source: IsceRowReader | PlacedRowReader | ProductRows = sources[step.source]
                elif step.source in unconverted:
                    source = unconverted[step.source].rows()
                else:
                    continue
                ctx.products = unconverted
                tags = {**common_tags, **(step.prepare(ctx) if step.prepare else {})}
                # a raster as it stands (on the grid) can be its products' COG source
                raw = sources.get(step.source)
                raw = raw if isinstance(raw, IsceRowReader) else None
                writers = {
                    spec.key: CogWriter(outdir / spec.filename, spec.filled(**settings), grid, tags,
                                        raw)
                    for spec in step.products
                }  # fmt: skip
                created.extend(writers.values())
                companions = {key: unconverted[key].rows() for key in step.companions
                              if key in unconverted}  # fmt: skip
                _run_pass(step, source, writers, ctx, memory_budget_mb, companions)
                unconverted.update(writers)
                # products no later pass reads convert in the background while the next runs
                read_later = {key for later in PASSES[index + 1 :]
                              for key in (later.source, *later.companions)}  # fmt: skip
                for key in [k for k in unconverted if k not in read_later]:
                    futures.append(pool.submit(unconverted.pop(key).finish))
            written = {path.name: path for path in (f.result() for f in futures)}
            stats = ctx.statistics()
            metadata = export_metadata(info, (wavelength, wavelength_source), coherence_threshold,
                                       ctx.reference, grid, inputs, list(written), stats, dem)  # fmt: skip
            metadata["grid"]["pair_placement"] = placement
            # what MintPy's hand-off needs from the run, read while the run directory is whole
            metadata["mintpy"] = run_record(workdir)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for writer in created:
            writer.discard()
        raise
    finally:
        pool.shutdown(wait=True)

    written[METADATA] = write_metadata(outdir, metadata)
    log.info("exported %s: %s", info.pair, ", ".join(sorted(written)))
    return ExportResult(outdir=outdir, files=written, metadata=metadata)


def _place(readers: dict[str, IsceRowReader], grid: Grid, track_grid: Grid | None,
           ) -> tuple[Grid, dict[str, IsceRowReader | PlacedRowReader], dict[str, Any]]:  # fmt: skip
    """The grid the products are written on, the readers onto it, and where the pair sits."""
    as_they_are: dict[str, IsceRowReader | PlacedRowReader] = dict(readers)
    where: dict[str, Any] = {"track_grid": track_grid is not None, "row_offset": 0,
                             "col_offset": 0, "width": grid.width, "length": grid.length}  # fmt: skip
    if track_grid is None:
        return grid, as_they_are, where
    place = overlap(grid, track_grid)  # refuses a grid off the track's lattice
    if place.empty:
        raise ProductError(
            f"the pair's geocoded output ({grid.bounds()}) does not meet the track grid "
            f"({track_grid.bounds()}); its topsApp.xml has another geocode bounding box: "
            "rerun the pair's topsApp.xml and geocode"
        )
    where.update(row_offset=place.row_offset, col_offset=place.col_offset)
    if place.is_identity(grid, track_grid):
        return track_grid, as_they_are, where
    log.info("the pair's geocoded %d x %d pixels sit at row %d, column %d of the %d x %d track "
             "grid; no data where they do not reach", grid.width, grid.length, place.row_offset,
             place.col_offset, track_grid.width, track_grid.length)  # fmt: skip
    return track_grid, {name: PlacedRowReader(reader, place, track_grid)
                        for name, reader in readers.items()}, where  # fmt: skip


def _run_pass(step: ProductPass, reader: IsceRowReader | PlacedRowReader | ProductRows,
              writers: dict[str, CogWriter], ctx: ExportContext, memory_budget_mb: int,
              companions: dict[str, ProductRows]) -> None:  # fmt: skip
    grid = ctx.grid
    rows = window_rows(grid.width, step.bytes_per_pixel, memory_budget_mb, grid.length)
    if step.whole_blocks:
        rows = max(REFERENCE_BLOCK, rows // REFERENCE_BLOCK * REFERENCE_BLOCK)
    started = time.perf_counter()
    with reader, ExitStack() as stack:
        opened = {key: stack.enter_context(rows_of) for key, rows_of in companions.items()}
        for row0 in range(0, grid.length, rows):
            height = min(rows, grid.length - row0)
            bands = reader.read_rows(row0, height)
            reader.prefetch(row0 + rows, min(rows, grid.length - row0 - rows))  # read while computing
            ctx.companions = {key: rows_of.read_rows(row0, height)[0] for key, rows_of in opened.items()}
            for key, values in step.compute(bands, row0, ctx).items():
                writers[key].write(row0, values, bands)
        ctx.companions = {}
    for writer in writers.values():
        writer.close()  # flushed: the COG translation reads the files
    log.debug("pass over %s: %.1f s", reader.path.name, time.perf_counter() - started)
