"""The workflow configuration: pydantic models (extra keys forbidden) and friendly error messages.

``config/config.yaml`` holds the commented defaults, ``config/schema.json`` is generated from
these models (``python -m dinsar schema``) and a test keeps the two in sync.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .roi import parse_roi

TRACK_RE = re.compile(r"^\d{1,3}_(ASC|DESC)$")
PAIR_RE = re.compile(r"^\d{8}_\d{8}$")
DATE_RE = re.compile(r"^\d{8}$")

PositiveInt = Annotated[int, Field(ge=1)]


def _pem_file_exists(value: str) -> str:
    if not Path(value).is_file():
        raise ValueError(f"CA bundle {value!r} not found; give the path of a PEM file or null")
    return value


PemFile = Annotated[str, AfterValidator(_pem_file_exists)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class Dates(_Section):
    """Acquisition window (inclusive, UTC dates)."""

    start: dt.date = Field(description="first date, e.g. 2025-12-20")
    end: dt.date = Field(description="last date, e.g. 2026-01-10")

    @model_validator(mode="after")
    def _ordered(self) -> Dates:
        if self.end < self.start:
            raise ValueError(
                f"end {self.end} is before start {self.start}; swap them or fix the dates"
            )
        return self


class Search(_Section):
    """Which Sentinel-1 IW SLC scenes the ASF search keeps."""

    host: str | None = Field(
        default=None, description="CMR host; null = NASA's production CMR (cmr.earthdata.nasa.gov)"
    )
    flight_direction: Literal["ASCENDING", "DESCENDING"] | None = Field(
        default=None, description="ASCENDING | DESCENDING | null (both)"
    )
    relative_orbits: list[Annotated[int, Field(ge=1, le=175)]] = Field(
        default_factory=list,
        description="relative orbit (path) numbers to keep, e.g. [13]; [] = any",
    )
    tracks: str | list[str] = Field(
        default="auto",
        description="auto = the track with most usable dates (then best coverage); all = every "
        "track, each processed separately; or a list of track ids '<path>_<ASC|DESC>', "
        "e.g. [13_DESC]",
    )
    polarization: Literal["VV", "VH", "HH", "HV"] = Field(
        default="VV", description="co-pol channel to process: VV | VH | HH | HV"
    )
    min_roi_coverage: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.95,
        description="a date is used only if its slices cover this fraction of the ROI",
    )

    @field_validator("flight_direction", mode="before")
    @classmethod
    def _upper_direction(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("tracks", mode="before")
    @classmethod
    def _track_ids(cls, value: Any) -> Any:
        allowed = (
            "allowed: 'auto', 'all' or a non-empty list like ['13_DESC', '42_ASC'] "
            "(<relative orbit>_<ASC|DESC>)"
        )
        if isinstance(value, str):
            if value not in ("auto", "all"):
                raise ValueError(f"got {value!r}; {allowed}")
        elif isinstance(value, list):
            bad = [t for t in value if not isinstance(t, str) or not TRACK_RE.match(t)]
            if bad or not value:
                raise ValueError(f"track ids {bad or value!r} are not valid; {allowed}")
        else:
            raise ValueError(f"got {value!r}; {allowed}")
        return value


class Network(_Section):
    """How every download and search talks to the servers."""

    ca_bundle: PemFile | None = Field(
        default=None,
        description="PEM file with extra trusted CAs (site proxy); null = system CAs",
    )
    timeout: Annotated[float, Field(gt=0)] = Field(
        default=60,
        description="seconds before a silent connection is abandoned (then retried)",
    )
    retries: Annotated[int, Field(ge=0, le=50)] = Field(
        default=5,
        description="retries with exponential backoff on 5xx / dropped connections",
    )
    backoff: Annotated[float, Field(ge=0, le=600)] = Field(
        default=2.0,
        description="seconds before the first retry; doubles each time (capped at 60)",
    )


class Pairs(_Section):
    """Interferogram network. The base network is single_reference (a star) if set, else
    `sequential` (each date with its next n dates) if n > 0, else all pairs allowed by the
    baseline limits. The limits then filter it, and `explicit` pairs are always added."""

    sequential: Annotated[int, Field(ge=0)] = Field(
        default=1, description="n nearest later dates per date (0 = off)"
    )
    max_temporal_baseline: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="days; null = no limit"
    )
    max_perpendicular_baseline: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="metres (|Bperp| from the records' state vectors); null = no limit",
    )
    explicit: list[str] = Field(
        default_factory=list,
        description='extra pairs, e.g. ["20251220_20260101"] (reference first)',
    )
    single_reference: str | None = Field(
        default=None, description="YYYYMMDD: pair every date with this one"
    )

    @field_validator("explicit", mode="before")
    @classmethod
    def _pair_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            out = []
            for item in value:
                text = "_".join(str(v) for v in item) if isinstance(item, list) else str(item)
                text = text.replace("-", "")
                if not PAIR_RE.match(text):
                    raise ValueError(
                        f"pair {item!r} is not valid; write 'YYYYMMDD_YYYYMMDD' "
                        "(reference date first)"
                    )
                ref, sec = text.split("_")
                _parse_yyyymmdd(ref)
                _parse_yyyymmdd(sec)
                if ref >= sec:
                    raise ValueError(
                        f"pair {item!r}: the reference (first) date must be earlier than the "
                        f"secondary; write '{min(ref, sec)}_{max(ref, sec)}'"
                    )
                out.append(text)
            return out
        return value

    @field_validator("single_reference", mode="before")
    @classmethod
    def _reference_date(cls, value: Any) -> Any:
        if value is None:
            return None
        text = value.strftime("%Y%m%d") if isinstance(value, dt.date) else str(value)
        text = text.replace("-", "")
        if not DATE_RE.match(text):
            raise ValueError(f"date {value!r} is not valid; write YYYY-MM-DD or YYYYMMDD")
        _parse_yyyymmdd(text)
        return text


class Cache(_Section):
    """Shared download caches; null = <workspace>/cache/<kind>. Point several workspaces at the
    same directories to download each scene, orbit and DEM tile only once."""

    slc: str | None = Field(default=None, description="SLC zips (4-8 GB each)")
    bursts: str | None = Field(
        default=None,
        description="burst TIFFs and their metadata XML (about 150 MB each), keyed by their "
        "granule name, shared by every area and run that needs the same bursts",
    )
    orbits: str | None = Field(default=None, description="orbit files (.EOF) and AUX_CAL")
    dem_tiles: str | None = Field(default=None, description="DEM tiles downloaded by dem_stitcher")


class Dem(_Section):
    """The DEM of each track: it covers the bursts topsApp processes, plus the buffer."""

    source: Literal["glo_30", "glo_90", "srtm_v3", "nasadem", "3dep"] = Field(
        default="glo_30",
        description="dem_stitcher dataset: glo_30 | glo_90 | srtm_v3 | nasadem | 3dep",
    )
    buffer: Annotated[float, Field(ge=0, le=5)] = Field(
        default=0.2,
        description="degrees added around the bursts topsApp processes (prevents runTopo edge "
        "errors)",
    )
    file: str | None = Field(
        default=None, description="your own DEM (GeoTIFF, any CRS) instead of downloading one"
    )
    file_vertical_datum: Literal["ellipsoid", "egm08", "egm96"] | None = Field(
        default=None, description="required with `file`: ellipsoid | egm08 | egm96"
    )
    geocode_resample: Literal["auto"] | Annotated[int, Field(ge=1, le=10)] = Field(
        default="auto",
        description="products posting in DEM samples: auto = as fine as the multilooked data "
        "(2 for GLO-30 at 7x19 looks), or a whole factor 1..10",
    )
    tiles_url: str | None = Field(
        default=None,
        description="DEM tile mirror: replaces scheme+host of dem_stitcher's tile URLs (the path "
        "is kept); null = the public dataset buckets",
    )
    geoid: str | None = Field(
        default=None,
        description="geoid raster (path or URL) for geoid -> ellipsoid heights; null = "
        "dem_stitcher's default (EGM2008 for glo_30/glo_90, read remotely)",
    )

    @model_validator(mode="after")
    def _local_file(self) -> Dem:
        if self.file is not None:
            if not Path(self.file).is_file():
                raise ValueError(f"file {self.file!r} not found; give the path of a GeoTIFF")
            if self.file_vertical_datum is None:
                raise ValueError(
                    "file_vertical_datum is required with dem.file: say whether the heights are "
                    "'ellipsoid' (WGS84), 'egm08' or 'egm96' (geoid)"
                )
        return self


class Orbits(_Section):
    """Orbit files per date, and AUX_CAL for the scenes that need it."""

    precise_only: bool = Field(
        default=False,
        description="true: a missing POEORB is an error instead of falling back to RESORB",
    )
    source: Literal["asf", "cdse"] = Field(
        default="asf",
        description="asf (public S3 bucket, no login) | cdse (Copernicus Data Space, login)",
    )
    asf_url: str | None = Field(
        default=None, description="orbit bucket URL override (mirror); null = ASF's bucket"
    )
    margin_seconds: Annotated[float, Field(ge=0)] = Field(
        default=60,
        description="the orbit must cover the acquisition plus this margin on both sides",
    )
    aux_cal_url: str | None = Field(
        default=None,
        description="where S1A/S1B_AUX_CAL zips come from (only IPF 002.36 scenes need them); "
        "null = the ESA SAR Mission Performance Cluster (sar-mpc.eu)",
    )


class Download(_Section):
    """SLC and burst downloads through Earthdata Login."""

    mode: Literal["auto", "burst", "slc"] = Field(
        default="auto",
        description="slc = whole IW SLC scenes; burst = only the bursts that cover the ROI (ASF's "
        "SLC-BURST collection, assembled per date with burst2safe), the same bursts on every "
        "date; auto = burst when the ROI needs at most 9 bursts per date, else slc (a saved "
        "search decides by what it holds)",
    )

    chunk_mb: Annotated[float, Field(gt=0, le=1024)] = Field(
        default=8,
        description="HTTP read size; a dropped transfer resumes from the last whole chunk",
    )
    disk_margin_gb: Annotated[float, Field(ge=0)] = Field(
        default=5, description="keep this much free space beyond the bytes still to download"
    )
    edl_host: str = Field(
        default="urs.earthdata.nasa.gov",
        description="Earthdata Login host (the .netrc machine name)",
    )
    asf_auth_host: str = Field(
        default="cumulus.asf.alaska.edu",
        description="ASF's login endpoint that Earthdata Login sends you back to; `dinsar login` "
        "checks a user and password with this round trip, as asf_search does",
    )
    progress_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30,
        description="a progress line in the download log every this many seconds",
    )


def topsapp_field(default: Any, prop: str, description: str, **constraints: Any) -> Any:
    """A setting that goes into topsApp.xml as property ``prop``, unchanged (x-topsapp)."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"x-topsapp": prop},
        **constraints,
    )


# Field metadata: the setting does not change topsApp.xml, so changing it reruns no pair.
KEEPS_PAIRS: dict[str, Any] = {"x-reruns-pairs": False}


class Isce(_Section):
    """topsApp.py settings. Those marked x-topsapp in config/schema.json go into topsApp.xml
    as they are; a change to any setting but topsapp, threads and min_free_gb re-makes the
    pairs' topsApp.xml and reruns them."""

    azimuth_looks: PositiveInt = topsapp_field(
        7, "azimuth looks", "multilook factor in azimuth for the merged/geocoded products"
    )
    range_looks: PositiveInt = topsapp_field(19, "range looks", "multilook factor in range")
    filter_strength: float = topsapp_field(
        0.5,
        "filter strength",
        "Goldstein-Werner filter exponent (0 = off .. 1 = strong)",
        ge=0,
        le=1,
    )
    unwrap: bool = topsapp_field(True, "do unwrap", "unwrap the filtered interferogram")
    unwrapper: Literal["snaphu_mcf", "snaphu", "icu"] = topsapp_field(
        "snaphu_mcf", "unwrapper name", "snaphu_mcf | snaphu | icu"
    )
    esd: bool = topsapp_field(
        True,
        "do ESD",
        "enhanced spectral diversity (azimuth coregistration refinement); off by itself for a "
        "pair with fewer than 2 common bursts per swath",
    )
    esd_coherence_threshold: float = topsapp_field(
        0.85, "ESD coherence threshold", "ESD uses overlap pixels above this coherence", gt=0, le=1
    )
    ionosphere: bool = topsapp_field(
        False, "do ionosphere correction", "split-spectrum ionospheric correction (slow)"
    )
    use_virtual_files: bool = topsapp_field(
        True, "use virtual files", "bursts read in place from the SLC zips (saves disk)"
    )
    swaths: Literal["auto"] | list[Annotated[int, Field(ge=1, le=3)]] = Field(
        default="auto",
        description="auto = only the swaths whose bursts intersect the ROI; or e.g. [1, 2]",
    )
    geocode_margin: Annotated[float, Field(ge=0, le=2)] = Field(
        default=0.05,
        description="degrees added around the ROI for the geocode bounding box",
    )
    geocode_list: list[str] = Field(
        default_factory=lambda: [
            "merged/filt_topophase.unw",
            "merged/filt_topophase.flat",
            # unfiltered: the exported unwrapped phase's value (dinsar.products.cycles)
            "merged/topophase.flat",
            "merged/topophase.cor",
            "merged/phsig.cor",
            "merged/los.rdr",
            "merged/filt_topophase.unw.conncomp",
        ],
        description="files geocoded by topsApp (must start with merged/)",
    )
    topsapp: str | list[str] | None = Field(
        default=None,
        description='command running topsApp.py, e.g. "apptainer exec isce2.sif topsApp.py" or a '
        "list; null = the project's ISCE2 build, else topsApp.py on PATH or in "
        "$ISCE_HOME/applications",
        json_schema_extra=KEEPS_PAIRS,
    )
    threads: PositiveInt = Field(
        default=4, description="OpenMP threads per topsApp step", json_schema_extra=KEEPS_PAIRS
    )
    reuse_geometry: bool = Field(
        default=True,
        description="topo once per reference date (the isce_geometry job): the pairs that share "
        "a reference date take its geom_reference files instead of computing them again; "
        "false = one topo per pair",
        json_schema_extra=KEEPS_PAIRS,
    )
    min_free_gb: Literal["auto"] | Annotated[float, Field(ge=0)] = Field(
        default="auto",
        description="free disk a pair needs before its topsApp run starts: auto = its bursts x "
        "2 GB of intermediates (dinsar_pair.json), or a number of GB; 0 turns the check off",
        json_schema_extra=KEEPS_PAIRS,
    )

    @field_validator("geocode_list")
    @classmethod
    def _merged_prefix(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not v.startswith("merged/") or ".." in v]
        if bad:
            raise ValueError(
                f"entries {bad!r} must start with 'merged/' (ISCE silently skips others), "
                "e.g. 'merged/filt_topophase.unw'"
            )
        return value


class Products(_Section):
    """The pairs' products."""

    reference_point: Literal["auto"] | list[float] | None = Field(
        default=None,
        description="null | auto (high-coherence area) | [lat, lon]: displacement set to 0 there",
    )
    coherence_threshold: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.3,
        description="pixels below are flagged in the coherence mask (data are kept)",
    )

    @field_validator("reference_point")
    @classmethod
    def _lat_lon(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) != 2 or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
                raise ValueError(
                    f"reference point {value!r} must be [lat, lon] in degrees, 'auto' or null"
                )
        return value


class Timeseries(_Section):
    """The time series of a track: MintPy (run as a program) inverts the track's network of
    unwrapped pairs into a displacement history per date and a velocity."""

    enabled: Literal["auto"] | bool = Field(
        default="auto",
        description="auto (every track with at least 3 dates and a connected network; the "
        "plan names the others and why) | true (as auto, but a track that cannot be inverted "
        "stops the plan with the reason) | false (never). `snakemake` and `snakemake "
        "timeseries` both run it",
    )
    reference_point: Literal["auto"] | list[float] = Field(
        default="auto",
        description="auto (the most stable reliable pixel: the one whose history is closest "
        "to the area's median) | [lat, lon] of stable ground: every date's displacement is 0 "
        "there; give one if most of the area moves",
    )
    min_coherence: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.7,
        description="coherence-based network modification: a pair whose mean coherence (over "
        "the area) is below is left out, as long as the network stays connected",
    )
    min_temporal_coherence: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.7,
        description="pixels whose inversion fits worse are masked in the velocity and the "
        "per-date maps",
    )
    topographic_residual: bool = Field(
        default=False,
        description="estimate and remove the DEM error from the perpendicular baselines "
        "(MintPy's topographicResidual); worth it for stacks with tens of dates and a spread "
        "of baselines, unstable on a few",
    )
    mintpy_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="more MintPy template lines, key -> value, written last (they win), e.g. "
        "{mintpy.troposphericDelay.method: pyaps} to turn on the weather-model correction, "
        "which downloads ERA5 data and needs a CDS account. The corrections that need the "
        "network are off by default.",
    )

    @field_validator("reference_point")
    @classmethod
    def _lat_lon(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) != 2 or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
                raise ValueError(f"reference point {value!r} must be [lat, lon] in degrees or 'auto'")
        return value

    @field_validator("mintpy_options")
    @classmethod
    def _mintpy_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, option in value.items():
            if not re.fullmatch(r"mintpy(\.[A-Za-z][A-Za-z0-9_]*)+", key):
                raise ValueError(
                    f"{key!r} is not a MintPy template key; keys look like "
                    "mintpy.troposphericDelay.method (see MintPy's smallbaselineApp.cfg)"
                )
            if re.search(r"[\n\r#=]", str(option)):
                raise ValueError(f"{key}: value {option!r} must be one line without '=' or '#'")
        return value


class Config(_Section):
    """Every user setting of the workflow. Unknown keys are rejected."""

    workspace: str = Field(
        default="insar_workspace",
        description="Everything a run writes goes under this directory (the seed toolkit's name).",
    )
    roi: str | list[float] = Field(
        description="Area of interest, lon/lat (EPSG:4326). One of:\n"
        '  a WKT polygon:  "POLYGON ((129.2 42.2, 129.3 42.2, 129.3 42.3, 129.2 42.3, 129.2 '
        '42.2))"\n'
        "  a bbox:         [W, S, E, N]            e.g. [129.2, 42.2, 129.3, 42.3]\n"
        "  a GeoJSON file: path/to/area.geojson    (all polygons in it are merged)"
    )
    dates: Dates
    inventory: str | None = Field(
        default=None,
        description="A saved search to use instead of querying ASF (no network needed to plan): "
        "an asf_search GeoJSON export (results.geojson()) or a "
        "<workspace>/inventory/scenes.geojson written by an earlier run. null = search ASF "
        "online.",
    )
    search: Search = Field(default_factory=Search)
    network: Network = Field(default_factory=Network)
    pairs: Pairs = Field(default_factory=Pairs)
    cache: Cache = Field(default_factory=Cache)
    dem: Dem = Field(default_factory=Dem)
    orbits: Orbits = Field(default_factory=Orbits)
    download: Download = Field(default_factory=Download)
    isce: Isce = Field(default_factory=Isce)
    keep: Literal["products", "all"] = Field(
        default="products",
        description="What to keep once a pair is geocoded: products (delete the 50-150 GB of "
        "intermediates, keep merged/*.geo, metadata and logs) | all",
    )
    products: Products = Field(default_factory=Products)
    timeseries: Timeseries = Field(default_factory=Timeseries)

    @field_validator("roi", mode="before")
    @classmethod
    def _roi(cls, value: Any) -> Any:
        if value is None:
            return value  # reported as "required but not set"
        try:
            parse_roi(value, key="roi")
        except ConfigError as exc:
            # strip the "roi: " prefix; the formatter adds the location itself
            raise ValueError(str(exc).split(": ", 1)[1]) from None
        return value

    @field_validator("inventory")
    @classmethod
    def _inventory_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(
                f"saved search {value!r} not found; give the path of an asf_search GeoJSON "
                "export or of a <workspace>/inventory/scenes.geojson, or null to search online"
            )
        return value

    @field_validator("workspace")
    @classmethod
    def _workspace(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("workspace must be a non-empty directory path")
        return value

    # Derived paths: caches default to inside the workspace.
    def cache_dir(self, kind: Literal["slc", "bursts", "orbits", "dem_tiles"]) -> Path:
        explicit = getattr(self.cache, kind)
        return Path(explicit) if explicit else Path(self.workspace) / "cache" / kind


def _parse_yyyymmdd(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date (YYYYMMDD)") from None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at the parent of ``loc`` (for 'unknown key' messages)."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        current = annotation if isinstance(annotation, type) else None
        if current is None:
            return []
    return list(current.model_fields) if hasattr(current, "model_fields") else []


def _format_error(err: dict[str, Any]) -> str:
    # list indices stay in the key (pairs.explicit.2): they say which entry is wrong
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "config"
    kind = err["type"]
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    if len(shown) > 100:
        shown = shown[:97] + "..."
    if kind == "extra_forbidden":
        allowed = _allowed_keys(Config, loc)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{key}: unknown key (typo?){did_you_mean} Allowed keys here: {', '.join(allowed)}"
    if kind == "missing" or (value is None and kind.endswith("_type")):
        return f"{key}: required but not set; see config/config.yaml for what to write"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{key}: got {shown}; allowed: {expected}"
    if kind == "value_error":
        message = err["msg"].removeprefix("Value error, ")
        return f"{key}: {message}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        ctx = err.get("ctx", {})
        bound = {
            "greater_than_equal": f">= {ctx.get('ge')}",
            "greater_than": f"> {ctx.get('gt')}",
            "less_than_equal": f"<= {ctx.get('le')}",
            "less_than": f"< {ctx.get('lt')}",
        }[kind]
        return f"{key}: got {shown}; must be {bound}"
    if kind == "finite_number":
        return f"{key}: got {shown}; must be a finite number"
    if kind.startswith("date_"):
        return f"{key}: got {shown}, not a valid date; write YYYY-MM-DD (e.g. 2025-12-20)"
    return f"{key}: got {shown}; {err['msg']}"


def _dedupe_union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic reports one error per union branch; keep the most telling one per location."""
    by_loc: dict[tuple[str, ...], dict[str, Any]] = {}
    for err in errors:
        # drop union-branch markers such as 'literal['auto','all']' or 'list[str]'
        loc = tuple(
            str(p)
            for p in err["loc"]
            if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float", "bool"}))
        )
        err = {**err, "loc": loc}
        previous = by_loc.get(loc)
        if previous is None or _rank(err) > _rank(previous):
            by_loc[loc] = err
    # "should be a string" for the branch not taken, beside a deeper error of the branch taken
    return [
        err
        for loc, err in by_loc.items()
        if not (
            err["type"].endswith("_type")
            and any(other[: len(loc)] == loc and len(other) > len(loc) for other in by_loc)
        )
    ]


def _rank(err: dict[str, Any]) -> int:
    return {"value_error": 3, "literal_error": 2, "extra_forbidden": 4}.get(err["type"], 1)


def validate_config(raw: dict[str, Any]) -> Config:
    """Validate a merged config dict; raise ConfigError listing every problem, one per line."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of keys, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        errors = _dedupe_union_errors(exc.errors(include_url=False))
        lines = [_format_error(e) for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A user's YAML config file as a mapping, not yet validated; a missing or unreadable file
    is one ConfigError naming it."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; check the path "
                          "(config/roi.yaml is an example)") from None  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}{where} is not valid YAML; fix its syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        detail = str(exc).replace("\n", " ")[:200]
        raise ConfigError(f"config file {path} is not readable ({detail})") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold settings (key: value), not a list or text")
    return raw if raw is not None else {}


def load_config_file(path: str | Path) -> Config:
    """A YAML config file, validated (relative paths in it are relative to the current folder,
    as for ``snakemake --configfile``)."""
    return validate_config(read_config_file(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) generated from the models; written to config/schema.json."""
    schema = Config.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    schema["title"] = "dInSAR-Toolkit configuration"
    return schema


# --- where each setting goes ------------------------------------------------------------------


def _extra(field: Any) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def topsapp_properties(isce: Isce) -> dict[str, Any]:
    """topsApp.xml property name -> value, for every setting that goes in as it is."""
    return {
        _extra(field)["x-topsapp"]: getattr(isce, name)
        for name, field in Isce.model_fields.items()
        if "x-topsapp" in _extra(field)
    }


def xml_settings(isce: Isce) -> dict[str, Any]:
    """The settings that shape topsApp.xml: a change re-makes it and reruns the pairs."""
    keep = {n for n, f in Isce.model_fields.items() if _extra(f).get("x-reruns-pairs") is False}
    return isce.model_dump(exclude=keep)


# --- config/config.yaml, generated from the models --------------------------------------------

DEFAULTS_HEADER = """\
# dInSAR-Toolkit defaults. Every key the workflow reads is here, with its meaning.
# Give your own values in a second file:  snakemake --configfile config/roi.yaml
# Unknown keys are rejected (typos never pass silently). Schema: config/schema.json.
# Generated from scripts/dinsar/config.py (python -m dinsar defaults > config/config.yaml).
"""
_COMMENT_COLUMN = 28
_WIDTH = 100


def _yaml_value(value: Any) -> str:
    import yaml

    if isinstance(value, dt.date):
        return value.isoformat()
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    lines: list[str] = []
    for paragraph in text.split("\n"):
        indent = len(paragraph) - len(paragraph.lstrip())
        lines += textwrap.wrap(paragraph, width=width, subsequent_indent=" " * indent,
                               break_on_hyphens=False) or [""]  # fmt: skip
    return lines


def _section_lines(model: type[BaseModel], values: BaseModel | None, indent: str) -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        value = getattr(values, name) if values is not None else None
        if isinstance(value, list) and len(value) > 3:  # long lists: one item per line
            head = f"{indent}{name}:"
            body = [f"{indent}  - {_yaml_value(v)}" for v in value]
        else:
            head, body = f"{indent}{name}: {_yaml_value(value)}", []
        column = max(_COMMENT_COLUMN, len(head) + 1)
        comment = _wrap(field.description or "", _WIDTH - column - 2)
        out.append(f"{head.ljust(column)}# {comment[0]}")
        out += [f"{' ' * column}# {line}" for line in comment[1:]]
        out += body
    return out


def defaults_yaml() -> str:
    """config/config.yaml: every key with its default and its description as a comment."""
    lines = [DEFAULTS_HEADER.rstrip("\n")]
    for name, field in Config.model_fields.items():
        lines.append("")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            doc = " ".join((annotation.__doc__ or "").split())
            lines += [f"# {line}" for line in _wrap(doc, _WIDTH - 2)] if doc else []
            lines.append(f"{name}:")
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            lines += _section_lines(annotation, default, "  ")
        else:
            lines += [f"# {line}" for line in _wrap(field.description or "", _WIDTH - 2)]
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            lines.append(f"{name}: {_yaml_value(default)}")
    return "\n".join(lines) + "\n"
