"""What a product raster is: its file, data type, units, description, no-data value and how its
overviews resample. Each product family module declares its products with :class:`ProductSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DinsarError

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]

FLOAT_NODATA = float("nan")
BYTE_NODATA = 255


class ProductError(DinsarError):
    """The ISCE output cannot be turned into products; the message says what to fix."""


@dataclass(frozen=True)
class ProductSpec:
    """One output raster.

    ``description`` and the ``tags`` values may hold ``str.format`` fields (``{wavelength}``,
    ``{threshold}``) that :meth:`filled` replaces with the export's settings.
    """

    key: str  # the product's name in metadata.json, the rules and expected_products()
    filename: str
    dtype: str
    units: str
    description: str
    resampling: str  # GDAL overview resampling
    tags: dict[str, str] = field(default_factory=dict)
    # The product is this band (1-based) of its pass's input wherever the band holds data; where
    # its bytes are the product's (no zero-fill, no NaN to mark), the COG is translated straight
    # from the ISCE raster (CogWriter), without a temporary copy.
    source_band: int | None = None

    @property
    def nodata(self) -> float:
        return BYTE_NODATA if self.dtype == "uint8" else FLOAT_NODATA

    def filled(self, **settings: Any) -> ProductSpec:
        return replace(
            self,
            description=self.description.format(**settings),
            tags={key: value.format(**settings) for key, value in self.tags.items()},
        )


def with_nodata(values: npt.ArrayLike, valid: BoolArray) -> FloatArray:
    """float32 copy with NaN wherever ``valid`` is False."""
    return np.where(valid, np.asarray(values, dtype=np.float32), np.float32(np.nan))
