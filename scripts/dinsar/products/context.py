"""What the passes of one export share: the settings, the unwrapped phase's validity (it decides
the connected components' no data), the per-block statistics for the automatic reference point,
and the running statistics that go into metadata.json.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..grid import Grid
from .isce_input import MergedInputs
from .reference import REFERENCE_BLOCK, BlockStats, ReferencePoint, ReferenceRequest, block_view
from .spec import BYTE_NODATA, BoolArray


class BitCache:
    """A packed on-disk boolean raster (1 bit per pixel) for passing validity between passes."""

    def __init__(self, path: Path, grid: Grid) -> None:
        self.path = path
        self.width = grid.width
        self.row_bytes = (grid.width + 7) // 8
        self._handle = open(path, "w+b")  # noqa: SIM115 (closed in close())
        self._handle.truncate(self.row_bytes * grid.length)

    def write(self, row0: int, valid: BoolArray) -> None:
        self._handle.seek(row0 * self.row_bytes)
        self._handle.write(np.packbits(valid, axis=1).tobytes())

    def read(self, row0: int, rows: int) -> BoolArray:
        self._handle.seek(row0 * self.row_bytes)
        raw = np.frombuffer(self._handle.read(rows * self.row_bytes), dtype=np.uint8)
        return np.unpackbits(raw.reshape(rows, self.row_bytes), axis=1)[:, : self.width].astype(bool)

    def close(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


class RunningStats:
    """Count, mean, min and max of the finite values, fed window by window."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: np.ndarray) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self.count += int(finite.size)
            self.total += float(finite.sum(dtype=np.float64))
            self.low = min(self.low, float(finite.min()))
            self.high = max(self.high, float(finite.max()))

    def summary(self, pixels: int) -> dict[str, Any]:
        count = self.count
        return {
            "valid_pixels": count,
            "valid_fraction": count / pixels if pixels else 0.0,
            "mean": self.total / count if count else None,
            "min": self.low if count else None,
            "max": self.high if count else None,
        }


class ExportContext:
    """State of one export, filled by the passes in their order (dinsar.products.export)."""

    def __init__(
        self,
        outdir: Path,
        grid: Grid,
        inputs: MergedInputs,
        wavelength: float,
        coherence_threshold: float,
        reference_request: ReferenceRequest,
    ) -> None:
        self.grid = grid
        self.inputs = inputs
        self.wavelength = wavelength
        self.coherence_threshold = coherence_threshold
        self.reference_request = reference_request
        self.reference = ReferencePoint(method="none")
        # the unwrapped phase's validity, kept for the connected components' no data and the
        # cycle transfer (dinsar.products.cycles)
        self.unw_valid = (
            BitCache(outdir / ".unw_valid.tmp", grid) if inputs.unw is not None else None
        )
        # the products written so far and not yet translated to COGs, by key (CogWriter)
        self.products: dict[str, Any] = {}
        # rows of earlier products over the current window (ProductPass.companions)
        self.companions: dict[str, np.ndarray] = {}
        # pixels the cycle transfer left out, by reason
        self.cycle_transfer: dict[str, int] = {}
        shape = (grid.length // REFERENCE_BLOCK, grid.width // REFERENCE_BLOCK)
        self.block_coherence = np.full(shape, np.nan, dtype=np.float32)
        self.block_unwrapped_ok = np.zeros(shape, dtype=bool)
        self.block_component = np.full(shape, -1, dtype=np.int32)
        self.component_sizes: npt.NDArray[np.int64] | None = (
            np.zeros(256, dtype=np.int64) if inputs.conncomp is not None else None
        )
        self.running: dict[str, RunningStats] = {}
        self.above_threshold = 0  # coherent pixels

    def __enter__(self) -> ExportContext:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.unw_valid is not None:
            self.unw_valid.close()

    def blocks_of(self, row0: int, values: np.ndarray) -> tuple[slice, np.ndarray] | None:
        """The block rows a window covers and its (rows, cols, b, b) block view, if any."""
        view = block_view(values, REFERENCE_BLOCK)
        if view.shape[0] == 0:
            return None
        first = row0 // REFERENCE_BLOCK  # windows start on block rows (ProductPass.whole_blocks)
        return slice(first, first + view.shape[0]), view

    def running_stats(self, product: str) -> RunningStats:
        return self.running.setdefault(product, RunningStats())

    def block_stats(self) -> BlockStats:
        return BlockStats(self.block_coherence, self.block_unwrapped_ok, self.block_component,
                          self.component_sizes)  # fmt: skip

    def statistics(self) -> dict[str, Any]:
        """metadata.json's ``stats``."""
        pixels = self.grid.width * self.grid.length
        stats: dict[str, Any] = {k: v.summary(pixels) for k, v in self.running.items()}
        if "coherence" in stats and stats["coherence"]["valid_pixels"]:
            stats["coherence"]["fraction_above_threshold"] = (
                self.above_threshold / stats["coherence"]["valid_pixels"]
            )
        if self.cycle_transfer:
            stats["cycle_transfer"] = {"masked_pixels": dict(self.cycle_transfer)}
        if self.component_sizes is not None:
            stats["connected_components"] = {
                "pixels_per_label": {
                    str(i): int(n)
                    for i, n in enumerate(self.component_sizes)
                    if n and i != BYTE_NODATA
                }
            }
        return stats
