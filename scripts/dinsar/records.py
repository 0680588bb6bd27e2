"""The JSON records the workflow's steps hand each other: one model, one read, one write each.

* ``OrbitManifest``  ``orbits/<date>.json``: which orbit file (and type) each platform of a
  date uses; written by the orbit step, read by topsApp.xml, the products and the report.
* ``AuxCalManifest`` ``aux_cal/<date>.json``: where a date's AUX_CAL files are.
* ``DemExtent``      ``dem/<track>/extent.json``: where the DEM must reach (dem_extent).
* ``DemManifest``    ``dem/<track>/dem.json``: the DEM and geocoding DEM of a track.
* ``PairRecord``     ``work/<pair>/dinsar_pair.json``: what the ISCE steps need of a pair
  beside topsApp.xml (swaths, bursts, what each group must leave).

The paths belong to the rules (their outputs); the library gets them from its callers. Every
write goes through dinsar.atomic; a record that does not parse names its file and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .atomic import write_json
from .errors import DinsarError


class RecordError(DinsarError):
    """A record file is missing, unreadable or not what its step writes."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str] = "record"
    maker: ClassVar[str] = "the step that writes it"

    @classmethod
    def read(cls, path: str | Path) -> Self:
        try:
            return cls.model_validate_json(Path(path).read_text())
        except OSError as exc:
            raise RecordError(
                f"{path}: the {cls.kind} is missing or unreadable ({exc.strerror or exc}); "
                f"rerun {cls.maker}"
            ) from None
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "the file"
            raise RecordError(
                f"{path} is not a valid {cls.kind} ({where}: {first['msg']}); delete it and "
                f"rerun {cls.maker}"
            ) from None

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.model_dump(mode="json"))


class OrbitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str  # S1A .. S1D
    type: str  # POEORB | RESORB
    file: str  # absolute path of the .EOF
    validity: list[str]  # [start, stop], ISO UTC
    granules: list[str]


class OrbitManifest(Record):
    kind: ClassVar[str] = "orbit manifest"
    maker: ClassVar[str] = "the orbit step (snakemake stage)"
    date: str
    orbits: list[OrbitEntry]

    def for_platform(self, platform: str) -> OrbitEntry | None:
        return next((o for o in self.orbits if o.platform == platform), None)

    @property
    def types(self) -> str:
        """"POEORB", "RESORB" or "POEORB+RESORB" (a date acquired by two platforms)."""
        return "+".join(sorted({o.type for o in self.orbits}))


class AuxCalManifest(Record):
    kind: ClassVar[str] = "AUX_CAL manifest"
    maker: ClassVar[str] = "the aux_cal step (snakemake stage)"
    date: str
    directory: str


class DemExtent(Record):
    kind: ClassVar[str] = "DEM extent"
    maker: ClassVar[str] = "the dem_extent step"
    bounds: list[float]  # [W, S, E, N]
    heights_m: list[float]  # the heights the bursts were placed at
    dates: int
    product_spacing_m: float  # the multilooked pixel spacing the products follow
    what: str = "bursts topsApp keeps for the ROI on every used date + geocoding box + dem.buffer"


class DemManifest(Record):
    kind: ClassVar[str] = "DEM manifest"
    maker: ClassVar[str] = "the dem step (snakemake stage)"
    track: str
    dem: str  # ISCE DEM for topo
    geocode_dem: str  # ISCE DEM whose grid the products are geocoded onto
    source: str = "unknown"  # the dataset, or "file"
    file: str | None = None  # dem.file, when that was used
    bounds: list[float] = Field(default_factory=list)
    vertical_datum: str = "WGS84"
    input_vertical_datum: str | None = None
    geoid: str | None = None
    registration: str = "point"
    extent: list[float] = Field(default_factory=list)  # sample bounds [W, S, E, N]
    posting: list[float] = Field(default_factory=list)
    size: list[int] = Field(default_factory=list)
    geocode_posting: list[float] = Field(default_factory=list)
    geocode_size: list[int] = Field(default_factory=list)
    geocode_resample: int = 1
    product_spacing_m: float | None = None
    voids_set_to_zero: int = 0
    tiles: list[str] = Field(default_factory=list)
    requirement: DemExtent | None = None

    def provenance(self) -> dict[str, Any]:
        """What the products and the report say about the DEM used."""
        keys = ("source", "file", "input_vertical_datum", "bounds", "posting", "geocode_posting")
        return self.model_dump(mode="json", include=set(keys))


class PairDate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: str
    platform: str
    track: str
    granules: list[str]


class PairRecord(Record):
    kind: ClassVar[str] = "pair record"
    maker: ClassVar[str] = "the topsapp_xml rule"
    pair: str
    reference: PairDate
    secondary: PairDate
    swaths: list[int]
    bursts_per_swath: dict[str, int]
    bursts: int  # common bursts topsApp keeps (its crop rule), over the swaths
    wavelength: float
    ipf: list[str]
    range_looks: int
    azimuth_looks: int
    unwrap: bool
    unwrapper: str
    esd: bool
    geocode: list[str]  # the geocode-list entries topsApp really writes
    output_dirs: dict[str, str]  # reference / secondary output directories of topsApp
