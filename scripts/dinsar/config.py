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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class Dates(_Section):
    """Acquisition window, inclusive, in UTC."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Dates:
        if self.end < self.start:
            raise ValueError(
                f"end {self.end} is before start {self.start}; swap them or fix the dates"
            )
        return self


class Search(_Section):
    host: str | None = Field(
        default=None, description="CMR host name; null = NASA's production CMR"
    )
    flight_direction: Literal["ASCENDING", "DESCENDING"] | None = None
    relative_orbits: list[Annotated[int, Field(ge=1, le=175)]] = Field(default_factory=list)
    tracks: str | list[str] = "auto"
    polarization: Literal["VV", "VH", "HH", "HV"] = "VV"
    min_roi_coverage: float = Field(default=0.95, gt=0, le=1)

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
    ca_bundle: str | None = Field(
        default=None, description="PEM file of extra trusted CAs (e.g. a site proxy)"
    )
    timeout: float = Field(default=60, gt=0)
    retries: int = Field(default=5, ge=0, le=50)
    backoff: float = Field(default=2.0, ge=0, le=600)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"CA bundle {value!r} not found; give the path of a PEM file or null")
        return value


class Pairs(_Section):
    sequential: int = Field(default=1, ge=0)
    max_temporal_baseline: float | None = Field(default=None, gt=0)
    max_perpendicular_baseline: float | None = Field(default=None, gt=0)
    explicit: list[str] = Field(default_factory=list)
    single_reference: str | None = None

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
    slc: str | None = None
    orbits: str | None = None
    dem_tiles: str | None = None


class Dem(_Section):
    source: Literal["glo_30", "glo_90", "srtm_v3", "nasadem", "3dep"] = "glo_30"
    buffer: float = Field(default=0.2, ge=0, le=5)
    file: str | None = None
    file_vertical_datum: Literal["ellipsoid", "egm08", "egm96"] | None = None
    geocode_resample: Literal["auto"] | Annotated[int, Field(ge=1, le=10)] = Field(
        default="auto",
        description="Posting of the geocoded products, in DEM samples: auto = as fine as the "
        "multilooked data (2 for GLO-30 at 7x19 looks), or a whole factor of the DEM posting",
    )
    tiles_url: str | None = Field(
        default=None,
        description="Mirror of the DEM tiles: replaces scheme and host of each tile URL in "
        "dem_stitcher's tile index, the path is kept (mirrors, tests)",
    )
    geoid: str | None = Field(
        default=None,
        description="Geoid raster (path or URL) for geoid -> ellipsoid heights; null = "
        "dem_stitcher's default for the source (EGM2008 for glo_30/glo_90)",
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
    precise_only: bool = False
    source: Literal["asf", "cdse"] = "asf"
    asf_url: str | None = Field(default=None, description="Override of the ASF orbit bucket URL")
    margin_seconds: float = Field(default=60, ge=0)
    aux_cal_url: str | None = Field(
        default=None,
        description="Where S1A/S1B_AUX_CAL_<version>.zip are fetched from; null = the ESA SAR MPC",
    )


class Download(_Section):
    chunk_mb: float = Field(default=8, gt=0, le=1024)
    disk_margin_gb: float = Field(default=5, ge=0)
    edl_host: str = "urs.earthdata.nasa.gov"
    progress_seconds: float = Field(default=30, gt=0, le=3600)


class Isce(_Section):
    azimuth_looks: PositiveInt = 7
    range_looks: PositiveInt = 19
    filter_strength: float = Field(default=0.5, ge=0, le=1)
    unwrap: bool = True
    unwrapper: Literal["snaphu_mcf", "snaphu", "icu"] = "snaphu_mcf"
    esd: bool = True
    esd_coherence_threshold: float = Field(default=0.85, gt=0, le=1)
    ionosphere: bool = False
    use_virtual_files: bool = True
    swaths: Literal["auto"] | list[Annotated[int, Field(ge=1, le=3)]] = "auto"
    geocode_margin: float = Field(default=0.05, ge=0, le=2)
    geocode_list: list[str] = Field(
        default_factory=lambda: [
            "merged/filt_topophase.unw",
            "merged/filt_topophase.flat",
            "merged/topophase.cor",
            "merged/phsig.cor",
            "merged/los.rdr",
            "merged/filt_topophase.unw.conncomp",
        ]
    )
    topsapp: str | list[str] | None = Field(
        default=None,
        description="Command that runs topsApp.py; null = find topsApp.py on PATH or in $ISCE_HOME",
    )
    threads: PositiveInt = 4
    min_free_gb: Literal["auto"] | Annotated[float, Field(ge=0)] = Field(
        default="auto",
        description="Free disk a pair needs before topsApp starts: auto = its bursts x 2 GB of "
        "intermediates, or a number of GB (0 = no check)",
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
    reference_point: Literal["auto"] | list[float] | None = None
    coherence_threshold: float = Field(default=0.3, ge=0, le=1)

    @field_validator("reference_point")
    @classmethod
    def _lat_lon(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) != 2 or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
                raise ValueError(
                    f"reference point {value!r} must be [lat, lon] in degrees, 'auto' or null"
                )
        return value


class Config(_Section):
    """Every user setting of the workflow. Unknown keys are rejected."""

    workspace: str = "insar_workspace"
    roi: str | list[float]
    dates: Dates
    inventory: str | None = None
    search: Search = Field(default_factory=Search)
    network: Network = Field(default_factory=Network)
    pairs: Pairs = Field(default_factory=Pairs)
    cache: Cache = Field(default_factory=Cache)
    dem: Dem = Field(default_factory=Dem)
    orbits: Orbits = Field(default_factory=Orbits)
    download: Download = Field(default_factory=Download)
    isce: Isce = Field(default_factory=Isce)
    keep: Literal["products", "all"] = "products"
    products: Products = Field(default_factory=Products)

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
    def cache_dir(self, kind: Literal["slc", "orbits", "dem_tiles"]) -> Path:
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
    loc = tuple(p for p in err["loc"] if not isinstance(p, int) or True)
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


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) generated from the models; written to config/schema.json."""
    schema = Config.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    schema["title"] = "dInSAR-Toolkit configuration"
    return schema
