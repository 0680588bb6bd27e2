"""topsApp.xml: build one per pair, and validate it against ISCE's own rules before running.

ISCE reads the file with its Configurable machinery (reference/isce2/topsapp_properties.json):
names ignore case and all whitespace but an underscore is not a space; values are Python
``eval``'d, so ``false`` is a non-empty string and therefore True, and a bare ``2`` for swaths is an
int that crashes later; only the components ``topsinsar``/``topsApp`` are read (others are
ignored without a word), and an unknown property name is fatal. :func:`validate_topsapp_xml`
refuses every such pitfall with one line naming the problem and the fix.

Pure text in, text out; the only I/O is the optional check that the named files exist.
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DinsarError
from .grid import Grid
from .isce_image import IsceImageError, normalise_name, property_text, read_image

if TYPE_CHECKING:  # the checks run inside an ISCE environment too: no pydantic needed there
    from .config import Isce

log = logging.getLogger(__name__)

APP_COMPONENTS = ("topsinsar", "topsapp")  # family and instance name of TopsInSAR
SENSOR_COMPONENTS = ("reference", "secondary")
UNWRAPPERS = ("icu", "grass", "snaphu", "snaphu_mcf", "downsample_snaphu")
POLARIZATIONS = ("vv", "vh", "hh", "hv")
_RENAMED = {"master": "reference", "slave": "secondary"}  # ISCE 2.5 renamed these


class TopsAppXmlError(DinsarError):
    """A topsApp.xml that ISCE would misread, ignore in part, or fail on."""

    def __init__(self, problems: Sequence[str], where: str = "topsApp.xml") -> None:
        self.problems = list(problems)
        super().__init__(f"{where}: " + " | ".join(self.problems))


def _property_table(component: str) -> dict[str, tuple[str, str, str | None]]:
    """normalised key -> (public name, type, container), from topsapp_properties.json."""
    data = json.loads(Path(__file__).with_name("topsapp_properties.json").read_text())
    return {normalise_name(name): (name, kind, container) for name, kind, container in data[component]}


# Parameters of TopsInSAR (applications/topsApp.py) and of the Sentinel-1 sensor component. A
# test keeps them equal to reference/isce2/topsapp_properties.json.
TOPSINSAR_PROPERTIES = _property_table("topsinsar")
SENSOR_PROPERTIES = _property_table("sensor")


# --- building -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sensor:
    """One date's inputs: the slices of its pass and the explicit orbit file."""

    safes: tuple[str, ...]
    output_dir: str
    orbit_file: str | None = None
    aux_dir: str | None = None  # only for IPF 002.36 products


@dataclass(frozen=True)
class TopsAppConfig:
    """One pair's topsApp.xml: its own inputs, and the isce settings (dinsar.config.Isce) that
    go in as they are (``topsapp_properties``), with the pair's own ``overrides`` of those
    (by topsApp property name, e.g. ESD off for a one-burst pair)."""

    reference: Sensor
    secondary: Sensor
    swaths: tuple[int, ...]
    roi_snwe: tuple[float, float, float, float]
    geocode_bbox_snwe: tuple[float, float, float, float]
    dem: str
    geocode_dem: str
    isce: Isce
    polarization: str = "vv"
    geocode_list: tuple[str, ...] = field(default_factory=tuple)
    overrides: dict[str, Any] = field(default_factory=dict)


def snwe(bounds_wsen: Sequence[float], margin: float = 0.0) -> tuple[float, float, float, float]:
    """[W, S, E, N] plus a margin -> ISCE's [S, N, W, E], clipped to valid lat/lon."""
    west, south, east, north = (float(v) for v in bounds_wsen)

    def r(value: float) -> float:
        # six decimals (0.1 m): avoids 54.449999999999996 in the XML
        return round(value, 6)

    return (
        r(max(-90.0, south - margin)),
        r(min(90.0, north + margin)),
        r(max(-180.0, west - margin)),
        r(min(180.0, east + margin)),
    )


def geocode_bbox_snwe(grid: Grid) -> tuple[float, float, float, float]:
    """The ``geocode bounding box`` [S, N, W, E] for which topsApp's geocode writes exactly the
    samples of ``grid`` (a grid on the geocoding DEM's lattice: dinsar.dem.track_grid_for).

    ISCE2's geozero (geozero.f90) takes whole DEM samples: with the DEM's first sample
    (lat0, lon0) and steps (dlat < 0, dlon), its first row is int((N - lat0) / dlat), its last
    int((S - lat0) / dlat), its first column int((W - lon0) / dlon) and its last
    int((E - lon0) / dlon) (Fortran truncation). Each edge of the box is therefore put half a
    step past the sample it selects, where float noise cannot tip the truncation either way.
    The samples are the grid's transform origin plus whole steps (``IsceImage.grid``).
    """
    lon0, dlon, _, lat0, _, dlat = grid.transform

    def r(value: float) -> float:
        return round(value, 9)  # far below half a step; avoids 54.449999999999996 in the XML

    return (
        r(lat0 + (grid.length - 0.5) * dlat),
        r(lat0 + 0.5 * dlat),
        r(lon0 + 0.5 * dlon),
        r(lon0 + (grid.width - 0.5) * dlon),
    )


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) if not isinstance(v, str) else repr(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_topsapp_xml(cfg: TopsAppConfig) -> str:
    """The topsApp.xml text, in the structure of ISCE's examples and hyp3-isce2's file."""
    root = ET.Element("topsApp")
    app = ET.SubElement(root, "component", name="topsinsar")

    def prop(parent: ET.Element, name: str, value: Any) -> None:
        ET.SubElement(parent, "property", name=name).text = (
            value if isinstance(value, str) else _literal(value)
        )

    prop(app, "Sensor name", "SENTINEL1")
    for name, sensor in (("reference", cfg.reference), ("secondary", cfg.secondary)):
        comp = ET.SubElement(app, "component", name=name)
        # always a list literal, even for one slice: a bare string is split on commas by ISCE
        prop(comp, "safe", _literal(list(sensor.safes)))
        if sensor.orbit_file:
            prop(comp, "orbit file", sensor.orbit_file)
        if sensor.aux_dir:
            prop(comp, "auxiliary data directory", sensor.aux_dir)
        prop(comp, "output directory", sensor.output_dir)
        prop(comp, "polarization", cfg.polarization.lower())
    prop(app, "swaths", list(cfg.swaths))
    prop(app, "region of interest", list(cfg.roi_snwe))
    prop(app, "demFilename", cfg.dem)
    prop(app, "geocode demfilename", cfg.geocode_dem)
    from .config import topsapp_properties

    for name, value in {**topsapp_properties(cfg.isce), **cfg.overrides}.items():
        prop(app, name, value)
    prop(app, "geocode bounding box", list(cfg.geocode_bbox_snwe))
    prop(app, "geocode list", _literal(list(cfg.geocode_list)))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Component:
    name: str  # as written
    properties: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (name, text)
    components: dict[str, Component] = field(default_factory=dict)


def evaluate(text: str) -> Any:
    """What ISCE's parser makes of a value: the Python literal it evaluates to, else the text.

    ISCE uses eval(); literal_eval gives the same result for every literal and never runs code.
    """
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip()


def parse_topsapp_xml(text: str) -> tuple[list[Component], list[str]]:
    """Top-level components and structural problems (bad XML, unknown tags, duplicates)."""
    problems: list[str] = []
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TopsAppXmlError([f"not well-formed XML ({exc}); regenerate it"]) from None

    def walk(element: ET.Element, where: str) -> Component:
        comp = Component(element.get("name", ""))
        for child in element:
            if child.tag == "property":
                name = child.get("name", "")
                key = normalise_name(name)
                if key in comp.properties:
                    problems.append(
                        f"property '{name}' appears twice in {where} (ISCE keeps the last one "
                        "silently); keep one"
                    )
                comp.properties[key] = (name, property_text(child))
            elif child.tag == "component":
                name = child.get("name", "")
                comp.components[normalise_name(name)] = walk(child, f"component '{name}'")
            elif child.tag not in ("doc", "units", "description"):
                problems.append(
                    f"<{child.tag}> in {where} is not generated by us (catalog files and other "
                    "tags are not supported); remove it"
                )
        return comp

    tops = []
    for child in root:
        if child.tag == "component":
            tops.append(walk(child, f"component '{child.get('name', '')}'"))
        elif child.tag == "property":
            problems.append(
                f"property '{child.get('name', '')}' is outside any component and ISCE ignores it; "
                "move it into <component name=\"topsinsar\">"
            )
    return tops, problems


# --- validating ---------------------------------------------------------------------------------


@dataclass
class ValidatedXml:
    """The values topsApp will use, after validation."""

    swaths: list[int]
    reference_dir: str
    secondary_dir: str
    reference_safes: list[str]
    secondary_safes: list[str]
    values: dict[str, Any]
    sensors: dict[str, dict[str, Any]]


def _suggest(key: str, table: Mapping[str, tuple[str, str, str | None]]) -> str:
    match = difflib.get_close_matches(key.replace("_", ""), list(table), n=1, cutoff=0.6)
    if match:
        return f"; did you mean '{table[match[0]][0]}'?"
    return ""


def _check_value(name: str, key: str, text: str, kind: str, container: str | None,
                 problems: list[str]) -> Any:  # fmt: skip
    value = evaluate(text)
    shown = text.strip()
    if container == "list":
        if not isinstance(value, list):
            if isinstance(value, str):
                what = "splits the text on commas (or spaces), which breaks paths that hold them"
            else:
                what = f"keeps the bare {type(value).__name__} {value!r}"
            if key == "swaths":
                what += ", and topsApp crashes later in preprocess (len() of an int)"
            example = "[2]" if key == "swaths" else "['...']"
            problems.append(
                f"property '{name}' = {shown!r} is not a list: ISCE {what}; "
                f"write a Python list literal such as {example}"
            )
            return None
        item = {"int": int, "float": (int, float), "str": str}.get(kind, object)
        bad = [v for v in value if not isinstance(v, item) or isinstance(v, bool)]
        if bad:
            problems.append(f"property '{name}' holds {bad[0]!r}, which is not a {kind}; fix the list")
            return None
        return value
    if kind == "bool":
        if shown not in ("True", "False"):
            problems.append(
                f"property '{name}' = {shown!r} is not a Python boolean: ISCE evaluates the text "
                f"and a non-empty string such as {shown!r} counts as True; write True or False"
            )
            return None
        return shown == "True"
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        problems.append(f"property '{name}' = {shown!r} is not an integer; write e.g. 7")
        return None
    if kind == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        problems.append(f"property '{name}' = {shown!r} is not a number; write e.g. 0.5")
        return None
    if kind == "str":
        return shown
    return value


def _check_box(name: str, box: Any, problems: list[str]) -> None:
    if box is None:
        return
    if len(box) != 4:
        problems.append(f"property '{name}' has {len(box)} values; write [S, N, W, E]")
        return
    south, north, west, east = box
    if south >= north or west >= east:
        problems.append(
            f"property '{name}' = {box} is not [S, N, W, E] with S < N and W < E "
            "(ISCE refuses it or crops nothing); swap the values into that order"
        )
    if not (-90 <= south <= 90 and -90 <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        problems.append(f"property '{name}' = {box} is outside lat/lon range; write [S, N, W, E] in degrees")


def _resolve(path: str, base: Path | None) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() or base is None else base / candidate


def _check_dem(name: str, path: str, base: Path | None, problems: list[str]) -> None:
    raster = _resolve(path, base)
    xml = raster.with_name(raster.name + ".xml")
    if not raster.is_file():
        problems.append(f"property '{name}': DEM raster {raster} is missing; run the DEM step first")
        return
    if not xml.is_file():
        problems.append(
            f"property '{name}': {xml.name} is missing next to the DEM; topsApp needs the ISCE "
            "sidecar (give the raster path without .xml and keep <raster>.xml beside it)"
        )
        return
    try:
        image = read_image(xml)
    except (IsceImageError, ET.ParseError) as exc:
        problems.append(
            f"property '{name}': {exc} (ISCE would silently assume start 0 and step 1, "
            "giving wrong heights); rewrite the DEM sidecar"
        )
        return
    if image.reference not in ("WGS84", "EGM96"):
        problems.append(
            f"property '{name}': {xml.name} has no 'reference' datum (ISCE then assumes EGM96 and "
            "applies a geoid correction); write reference WGS84 for ellipsoid heights"
        )
    if raster.stat().st_size != image.expected_size:
        problems.append(
            f"property '{name}': {raster.name} has {raster.stat().st_size} bytes but its .xml "
            f"describes {image.expected_size}; rewrite the DEM"
        )


def validate_topsapp_xml(text: str, *, base_dir: str | Path | None = None,
                         check_files: bool = True, where: str = "topsApp.xml") -> ValidatedXml:  # fmt: skip
    """Refuse anything ISCE would misread; return the values it will use.

    base_dir: the directory topsApp runs in (relative paths resolve there).
    """
    base = Path(base_dir) if base_dir is not None else None
    tops, problems = parse_topsapp_xml(text)
    apps = [c for c in tops if normalise_name(c.name) in APP_COMPONENTS]
    for comp in tops:
        if normalise_name(comp.name) not in APP_COMPONENTS:
            problems.append(
                f"component '{comp.name}' is ignored by topsApp, which reads only 'topsinsar' or "
                "'topsApp' (every setting in it would silently fall back to ISCE's defaults); "
                "rename it to 'topsinsar'"
            )
    if len(apps) != 1:
        if not apps:
            problems.append("no <component name=\"topsinsar\">; put all settings inside one")
        else:
            problems.append("more than one topsinsar/topsApp component; merge them into one")
        raise TopsAppXmlError(problems, where)
    app = apps[0]
    values: dict[str, Any] = {}
    for key, (name, value_text) in app.properties.items():
        if key not in TOPSINSAR_PROPERTIES:
            problems.append(
                f"unknown property '{name}' (ISCE reads it as '{key}' and exits with 'The attribute "
                "corresponding to the key ... is not present'; names ignore case and spaces, but "
                f"'_' is not a space){_suggest(key, TOPSINSAR_PROPERTIES)}"
            )
            continue
        _, kind, container = TOPSINSAR_PROPERTIES[key]
        values[key] = _check_value(name, key, value_text, kind, container, problems)
    sensors: dict[str, dict[str, Any]] = {}
    for key, comp in app.components.items():
        if key in _RENAMED:
            problems.append(
                f"component '{comp.name}' is the pre-2.5 name and ISCE 2.6 exits on it; "
                f"rename it to '{_RENAMED[key]}'"
            )
            continue
        if key not in SENSOR_COMPONENTS:
            problems.append(
                f"component '{comp.name}' inside topsinsar is not 'reference' or 'secondary'; "
                "remove or rename it"
            )
            continue
        sensor: dict[str, Any] = {}
        for pkey, (name, value_text) in comp.properties.items():
            if pkey not in SENSOR_PROPERTIES:
                problems.append(
                    f"unknown property '{name}' in component '{comp.name}' (ISCE exits: the key "
                    f"'{pkey}' is not present in Sentinel1){_suggest(pkey, SENSOR_PROPERTIES)}"
                )
                continue
            _, kind, container = SENSOR_PROPERTIES[pkey]
            sensor[pkey] = _check_value(name, pkey, value_text, kind, container, problems)
        for subname in comp.components.values():
            problems.append(f"component '{subname.name}' inside '{comp.name}' is not supported; remove it")
        sensors[key] = sensor

    # presence of what every run needs
    for key in SENSOR_COMPONENTS:
        if key not in sensors and not any(k in _RENAMED for k in app.components):
            problems.append(f"component '{key}' is missing; add it with its 'safe' list")
    for key, sensor in sensors.items():
        for needed, public in (("safe", "safe"), ("outputdirectory", "output directory")):
            if needed not in sensor or sensor[needed] in ("", []):
                problems.append(f"component '{key}' lacks '{public}'; set it")
        pol = sensor.get("polarization")
        if pol is not None and pol not in POLARIZATIONS:
            fix = pol.lower() if isinstance(pol, str) and pol.lower() in POLARIZATIONS else "vv"
            problems.append(
                f"component '{key}': polarization {pol!r} must be lower case (ISCE inserts it "
                f"into case-sensitive file-name patterns and finds no annotation); write '{fix}'"
            )
    for needed, public in (("swaths", "swaths"), ("regionofinterest", "region of interest"),
                           ("demfilename", "demFilename")):  # fmt: skip
        if needed not in app.properties:
            hint = " (without it ISCE downloads SRTM over the network)" if needed == "demfilename" else ""
            problems.append(f"property '{public}' is missing{hint}; set it")

    # values
    swaths = values.get("swaths")
    if isinstance(swaths, list):
        if not swaths or any(s not in (1, 2, 3) for s in swaths) or len(set(swaths)) != len(swaths):
            problems.append(f"property 'swaths' = {swaths} must list distinct swaths 1..3, e.g. [1, 2]")
    for key, public in (("regionofinterest", "region of interest"),
                        ("geocodeboundingbox", "geocode bounding box")):  # fmt: skip
        _check_box(public, values.get(key), problems)
    unwrapper = values.get("unwrappername")
    if isinstance(unwrapper, str) and unwrapper.lower() not in UNWRAPPERS:
        problems.append(
            f"property 'unwrapper name' = {unwrapper!r} is not one of {', '.join(UNWRAPPERS)} "
            "(topsApp then crashes at start-up); pick one"
        )
    sensor_name = values.get("sensorname")
    if isinstance(sensor_name, str) and sensor_name.upper() != "SENTINEL1":
        problems.append(f"property 'Sensor name' = {sensor_name!r}; topsApp only knows SENTINEL1")
    geocode = values.get("geocodelist")
    if isinstance(geocode, list):
        bad = [g for g in geocode if not g.startswith("merged/")]
        if bad:
            problems.append(
                f"geocode list entries {bad} lack the 'merged/' prefix and ISCE silently skips "
                "them; write e.g. 'merged/filt_topophase.unw'"
            )
    dirs = {k: sensors.get(k, {}).get("outputdirectory") for k in SENSOR_COMPONENTS}
    if _same_dir(dirs["reference"], dirs["secondary"]):
        problems.append(
            f"reference and secondary 'output directory' are both {dirs['reference']!r}: ISCE "
            "would write both dates' bursts into one folder; use 'reference' and 'secondary'"
        )

    if check_files:
        for key, sensor in sensors.items():
            for item in sensor.get("safe") or []:
                path = _resolve(item, base)
                if not (path.is_file() or (path.is_dir() and path.name.endswith(".SAFE"))):
                    problems.append(f"component '{key}': SAFE {path} is missing; run staging first")
                elif path.is_file() and not path.name.endswith(".zip"):
                    problems.append(
                        f"component '{key}': {path.name} does not end in .zip, so ISCE would not "
                        "open it as a zip; rename it"
                    )
            orbit = sensor.get("orbitfile")
            if orbit and not _resolve(orbit, base).is_file():
                problems.append(f"component '{key}': orbit file {orbit} is missing; rerun the orbit step")
            aux = sensor.get("auxiliarydatadirectory")
            if aux and not _resolve(aux, base).is_dir():
                problems.append(f"component '{key}': auxiliary data directory {aux} is missing")
        for key, public in (("demfilename", "demFilename"), ("geocodedemfilename", "geocode demfilename")):
            if values.get(key):
                _check_dem(public, values[key], base, problems)
    if problems:
        raise TopsAppXmlError(problems, where)
    return ValidatedXml(
        swaths=list(swaths or []),
        reference_dir=str(dirs["reference"]),
        secondary_dir=str(dirs["secondary"]),
        reference_safes=list(sensors["reference"].get("safe") or []),
        secondary_safes=list(sensors["secondary"].get("safe") or []),
        values=values,
        sensors=sensors,
    )


def _same_dir(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return os.path.normpath(a.rstrip("/")) == os.path.normpath(b.rstrip("/"))


def validate_file(path: str | Path, check_files: bool = True) -> ValidatedXml:
    path = Path(path)
    return validate_topsapp_xml(path.read_text(), base_dir=path.parent, check_files=check_files,
                                where=str(path))  # fmt: skip
