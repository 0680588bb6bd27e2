"""topsApp's configuration reading, as ISCE's Configurable does it.

* input files: ``topsinsar.xml`` and ``topsApp.xml`` in the current directory are always read,
  then the files named on the command line (later files win);
* only the root's ``topsinsar``/``topsApp`` components count, others are ignored silently;
* names: whitespace removed, lower case (``_`` is not a space);
* values: ``eval``'d (literal_eval here), else kept as text; then cast by the parameter's type:
  ``bool('false')`` is True; for list parameters a string is split and a non-string (``2``) kept;
* an unknown name, or a value the cast refuses, logs ISCE's message and exits 1.

The parameter table is read from the shared reference (topsapp_properties.json).
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from dbl_formats import evaluate, norm

SHARED = Path(os.environ.get("DINSAR_SHARED", Path(__file__).resolve().parents[3] / "shared"))
TABLE = SHARED / "reference" / "isce2" / "topsapp_properties.json"
APP_CLASS = "<class '__main__.TopsInSAR'>"
SENSOR_CLASS = "<class 'isceobj.Sensor.TOPS.Sentinel1.Sentinel1'>"
TYPES = {"str": str, "int": int, "float": float, "bool": bool}


class IsceExit(Exception):
    """ISCE called sys.exit(code) after printing a message."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _table() -> dict[str, Any]:
    data = json.loads(TABLE.read_text())
    out = {}
    for comp in ("topsinsar", "reference"):
        params = {p["normalized_key"]: p for p in data["components"][comp]["parameters"]}
        facilities = [f["normalized_key"] for f in data["components"][comp].get("facilities", [])]
        out[comp] = (params, facilities)
    return out


def missing_key_message(key: str, cls: str) -> str:
    # Configurable.initProperties, verbatim
    return (
        f'Error. The attribute corresponding to the key "{key}" is not present in the object '
        f'"{cls}".\nPossible causes are the definition in the xml file of such attribute that is '
        f'no longer defined \nin the object "{cls}" or a spelling error'
    )


def apply_type(value: Any, kind: str, container: str | None) -> Any:
    """Configurable.apply_type."""
    cast = TYPES.get(kind, str)
    if container == "list":
        if isinstance(value, str):
            text = value.strip().strip("[]")
            parts = text.split(",") if "," in text else text.split()
            return [cast(p.strip().strip("'\"")) for p in parts if p.strip()]
        if isinstance(value, (list, tuple)):
            return [cast(v) for v in value]
        return value  # a bare int stays an int: topsApp crashes on it later
    return cast(value)


def _collect(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        if child.tag == "property":
            text = child.get("value")
            if text is None:
                v = child.find("value")
                text = v.text if v is not None else child.text
            out[norm(child.get("name", ""))] = evaluate(text)
        elif child.tag == "component":
            catalog = child.find("catalog")
            if catalog is not None and catalog.text:
                sub = _collect(ET.parse(catalog.text.strip()).getroot())
            else:
                sub = {}
            sub.update(_collect(child))
            out.setdefault(norm(child.get("name", "")), {})
            if isinstance(out[norm(child.get("name", ""))], dict):
                out[norm(child.get("name", ""))].update(sub)
    return out


def read_inputs(files: list[str]) -> dict[str, Any]:
    """Merged topsinsar settings from the auto-loaded and command-line files."""
    merged: dict[str, Any] = {}
    auto = [f for f in ("topsinsar.xml", "topsApp.xml") if Path(f).is_file()]
    for name in [*auto, *files]:
        root = ET.parse(name).getroot()
        for child in root:
            if child.tag != "component" or norm(child.get("name", "")) not in ("topsinsar", "topsapp"):
                continue  # ignored silently, as ISCE does
            for key, value in _collect(child).items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key].update(value)
                else:
                    merged[key] = value
    return merged


class Settings:
    """Typed topsinsar settings (defaults from the table) and the two sensor components."""

    def __init__(self, raw: dict[str, Any]) -> None:
        table = _table()
        params, facilities = table["topsinsar"]
        sensor_params, _ = table["reference"]
        self.values: dict[str, Any] = {k: p["default"] for k, p in params.items()}
        self.sensors: dict[str, dict[str, Any]] = {
            name: {k: p["default"] for k, p in sensor_params.items()}
            for name in ("reference", "secondary")
        }
        for key, value in raw.items():
            if isinstance(value, dict) and key in ("reference", "secondary"):
                for skey, svalue in value.items():
                    if skey not in sensor_params:
                        raise IsceExit(missing_key_message(skey, SENSOR_CLASS))
                    p = sensor_params[skey]
                    try:
                        self.sensors[key][skey] = apply_type(svalue, p["type"], p["container"])
                    except (TypeError, ValueError):
                        raise IsceExit(missing_key_message(skey, SENSOR_CLASS)) from None
                continue
            if isinstance(value, dict) and key in facilities:
                continue
            if key not in params:
                raise IsceExit(missing_key_message(key, APP_CLASS))
            p = params[key]
            try:
                self.values[key] = apply_type(value, p["type"], p["container"])
            except (TypeError, ValueError):
                raise IsceExit(missing_key_message(key, APP_CLASS)) from None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def log_error(message: str) -> None:
    print(f"isce.topsinsar - ERROR - {message}", file=sys.stderr)
