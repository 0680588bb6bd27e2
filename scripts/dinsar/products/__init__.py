"""Per-pair products from topsApp's geocoded output: Cloud-Optimized GeoTIFFs and metadata.json.

Modules, by job:

* ``isce_input``: the run directory's geocoded rasters (IsceRowReader, find_merged_inputs), what
  their zeros mean, the radar wavelength;
* one module per product family, each with its ProductSpec(s) and the function that computes a
  window: ``displacement`` (LOS displacement, unwrapped phases), ``cycles`` (the unwrapped phase
  without the filter's bias: the unfiltered interferogram plus the filtered unwrap's whole
  cycles, and its mask), ``wrapped``, ``coherence`` (and
  its mask), ``phase_sigma``, ``components`` (connected components), ``angles`` (incidence and
  azimuth); ``reference`` chooses the displacement's reference point;
* ``metadata``: PairInfo, provenance (ISCE's Bperp and version, DEM, orbits), metadata.json;
* ``cog``: writing a product as a COG with its overviews;
* ``export``: the table of passes and :func:`export_pair`; ``context`` is what its passes share.
* ``mintpy_handoff``: after the export, the files MintPy's ``hyp3`` loader reads, beside the
  products (:func:`~dinsar.products.mintpy_handoff.write_mintpy_handoff`).

The names below are the package's interface; scripts and rules import them from here.
"""

from .angles import AZIMUTH_ANGLE, AZIMUTH_DEFINITION, INCIDENCE_ANGLE, INCIDENCE_DEFINITION
from .cog import COG_OPTIONS, downsample2, overview_count, window_rows
from .coherence import COHERENCE, COHERENCE_MASK, coherence_mask
from .components import CONNECTED_COMPONENTS
from .displacement import (
    FILTERED_UNWRAPPED_PHASE,
    LOS_DISPLACEMENT,
    SIGN_CONVENTION,
    UNWRAPPED_PHASE,
    los_displacement_to_phase,
    phase_to_los_displacement,
)
from .export import PASSES, ExportResult, ProductPass, expected_products, export_pair
from .isce_input import (
    SENTINEL1_WAVELENGTH_M,
    IsceRowReader,
    MergedInputs,
    find_merged_inputs,
    read_wavelength,
    topsapp_roi_snwe,
)
from .metadata import (
    METADATA,
    PairInfo,
    isce_bperp,
    isce_version,
    pair_info_dict,
    pair_info_from_workdir,
    read_metadata,
    read_orbit_types,
)
from .phase_sigma import PHASE_SIGMA
from .reference import (
    BlockStats,
    ReferencePoint,
    choose_reference_block,
    label_components,
    latlon_of,
    rowcol_of,
)
from .spec import BYTE_NODATA, FLOAT_NODATA, ProductError, ProductSpec
from .wrapped import WRAPPED_PHASE, wrapped_phase

__all__ = [
    "AZIMUTH_ANGLE",
    "AZIMUTH_DEFINITION",
    "BYTE_NODATA",
    "COG_OPTIONS",
    "COHERENCE",
    "COHERENCE_MASK",
    "CONNECTED_COMPONENTS",
    "FLOAT_NODATA",
    "INCIDENCE_ANGLE",
    "INCIDENCE_DEFINITION",
    "LOS_DISPLACEMENT",
    "METADATA",
    "PASSES",
    "PHASE_SIGMA",
    "SENTINEL1_WAVELENGTH_M",
    "SIGN_CONVENTION",
    "UNWRAPPED_PHASE",
    "FILTERED_UNWRAPPED_PHASE",
    "WRAPPED_PHASE",
    "BlockStats",
    "ExportResult",
    "IsceRowReader",
    "MergedInputs",
    "PairInfo",
    "ProductError",
    "ProductPass",
    "ProductSpec",
    "ReferencePoint",
    "choose_reference_block",
    "coherence_mask",
    "downsample2",
    "expected_products",
    "export_pair",
    "find_merged_inputs",
    "isce_bperp",
    "isce_version",
    "label_components",
    "latlon_of",
    "los_displacement_to_phase",
    "overview_count",
    "pair_info_dict",
    "pair_info_from_workdir",
    "phase_to_los_displacement",
    "read_metadata",
    "read_orbit_types",
    "read_wavelength",
    "rowcol_of",
    "topsapp_roi_snwe",
    "window_rows",
    "wrapped_phase",
]
