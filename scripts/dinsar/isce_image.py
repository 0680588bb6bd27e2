"""ISCE image sidecars: the ``<file>.xml`` ISCE reads and the ``<file>.vrt`` GDAL reads.

Also the one reader of ISCE's XML files (image sidecars, topsApp.xml, the swath metadata
``IW<n>.xml``): :func:`parse_xml`, :func:`iter_properties`, :func:`component_properties`,
:func:`read_xml_properties`.

Written the way ISCE 2.6.5's ``Image.renderHdr``/``renderVRT`` write them (see
reference/isce2/isce_image_xml.md): geolocation only in the ``coordinate1``/``coordinate2``
components, with ``startingvalue``, ``delta`` and ``size`` always present; the VRT beside the
raster with a relative ``SourceFilename``. Reading is lenient like ISCE's parser (names ignore
case and whitespace, values are Python literals).
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, write_text
from .grid import Grid

ISCE_VERSION = "Release: 2.6.5, svn-, 20260630. Current: svn-."

NUMPY_TYPES: dict[str, str] = {
    "BYTE": "uint8",
    "SHORT": "int16",
    "INT": "int32",
    "LONG": "int64",
    "FLOAT": "float32",
    "DOUBLE": "float64",
    "CFLOAT": "complex64",
    "CDOUBLE": "complex128",
}
GDAL_TYPES: dict[str, str] = {
    "BYTE": "Byte",
    "SHORT": "Int16",
    "INT": "Int32",
    "LONG": "Int64",
    "FLOAT": "Float32",
    "DOUBLE": "Float64",
    "CFLOAT": "CFloat32",
    "CDOUBLE": "CFloat64",
}
FAMILIES = {"dem": ("demimage", "demimage_name")}


class IsceImageError(ValueError):
    """An ISCE image sidecar is missing a field ISCE needs, or disagrees with its raster."""


@dataclass(frozen=True)
class IsceImage:
    """Metadata of one ISCE raster (the values ISCE's Image class holds)."""

    file_name: str  # as written into the XML (absolute, or relative to the run directory)
    width: int
    length: int
    data_type: str  # ISCE name: BYTE SHORT INT FLOAT DOUBLE CFLOAT ...
    bands: int = 1
    scheme: str = "BIP"
    first_lon: float = 0.0  # coordinate1 startingvalue (0 for radar geometry)
    delta_lon: float = 1.0
    first_lat: float = 0.0  # coordinate2 startingvalue
    delta_lat: float = 1.0
    image_type: str = ""
    reference: str | None = None  # vertical datum of a DEM: WGS84 | EGM96
    byte_order: str = "l"

    @property
    def nbytes(self) -> int:
        return int(np.dtype(NUMPY_TYPES[self.data_type]).itemsize)

    @property
    def is_geocoded(self) -> bool:
        return not (
            self.first_lon == 0
            and self.delta_lon == 1
            and self.first_lat == 0
            and self.delta_lat == 1
        )

    @property
    def expected_size(self) -> int:
        return self.width * self.length * self.bands * self.nbytes

    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        return (self.first_lon, self.delta_lon, 0.0, self.first_lat, 0.0, self.delta_lat)

    def grid(self) -> Grid:
        """The grid our readers take for a geocoded raster: ``startingvalue`` as the transform's
        origin, as ISCE's own VRTs and GDAL's ISCE driver read it (see dinsar.grid). The products
        and the track grid (dinsar.grid.track_grid) both use it, so they compare exactly."""
        return Grid.from_transform(self.geotransform(), self.width, self.length)

    def band_offsets(self, band: int) -> tuple[int, int, int]:
        """(ImageOffset, PixelOffset, LineOffset) of a 0-based band, as Image.renderVRT computes."""
        n, w, b = self.nbytes, self.width, self.bands
        if self.scheme == "BIL":
            return band * w * n, n, b * w * n
        if self.scheme == "BSQ":
            return band * w * self.length * n, n, w * n
        return band * n, b * n, b * w * n


def _prop(parent: ET.Element, name: str, value: Any, doc: str | None = None) -> None:
    element = ET.SubElement(parent, "property", name=name)
    ET.SubElement(element, "value").text = _text(value)
    if doc:
        ET.SubElement(element, "doc").text = doc


def _text(value: Any) -> str:
    # repr() keeps full float precision (e.g. 0.0002777777777777778): a rounded delta shifts
    # the far edge of a DEM by pixels.
    return repr(value) if isinstance(value, float) else str(value)


def _coordinate(
    parent: ET.Element, name: str, start: float, delta: float, size: int, doc: str
) -> None:
    comp = ET.SubElement(parent, "component", name=name)
    ET.SubElement(comp, "factorymodule").text = "isceobj.Image"
    ET.SubElement(comp, "factoryname").text = "createCoordinate"
    ET.SubElement(comp, "doc").text = doc
    _prop(comp, "delta", float(delta), "Coordinate quantization.")
    _prop(comp, "endingvalue", float(start + size * delta), "Ending value of the coordinate.")
    _prop(comp, "family", "imagecoordinate", "Instance family name")
    _prop(comp, "name", "imagecoordinate_name", "Instance name")
    _prop(comp, "size", int(size), "Coordinate size.")
    _prop(comp, "startingvalue", float(start), "Starting value of the coordinate.")


def render_xml(image: IsceImage) -> str:
    """The ``<file>.xml`` text, property for property as ISCE's renderHdr writes it."""
    root = ET.Element("imageFile")
    _prop(root, "ISCE_VERSION", ISCE_VERSION)
    _prop(root, "access_mode", "read", "Image access mode.")
    _prop(root, "byte_order", image.byte_order, "Endianness of the image.")
    _coordinate(root, "coordinate1", image.first_lon, image.delta_lon, image.width,
                "First coordinate of a 2D image (width).")  # fmt: skip
    _coordinate(root, "coordinate2", image.first_lat, image.delta_lat, image.length,
                "Second coordinate of a 2D image (length).")  # fmt: skip
    _prop(root, "data_type", image.data_type, "Image data type.")
    _prop(root, "extra_file_name", image.file_name + ".vrt", "For example name of vrt metadata.")
    family, name = FAMILIES.get(image.image_type, ("image", "image_name"))
    _prop(root, "family", family, "Instance family name")
    _prop(root, "file_name", image.file_name, "Name of the image file.")
    if image.image_type:
        _prop(root, "image_type", image.image_type, "Image type used for displaying.")
    _prop(root, "length", image.length, "Image length")
    _prop(root, "name", name, "Instance name")
    _prop(root, "number_bands", image.bands, "Number of image bands.")
    if image.reference is not None:
        _prop(root, "reference", image.reference, "Geodetic datum")
    _prop(root, "scheme", image.scheme, "Interleaving scheme of the image.")
    _prop(root, "width", image.width, "Image width")
    _prop(
        root, "xmax", float(image.first_lon + image.width * image.delta_lon), "Maximum range value"
    )
    _prop(root, "xmin", float(image.first_lon), "Minimum range value")
    ET.indent(root, space="    ")
    return ET.tostring(root, encoding="unicode") + "\n"


def render_vrt(image: IsceImage, raster_basename: str) -> str:
    """The ``<file>.vrt`` text, as ISCE's renderVRT writes it (relative source path)."""
    root = ET.Element("VRTDataset", rasterXSize=str(image.width), rasterYSize=str(image.length))
    if image.is_geocoded:
        ET.SubElement(root, "SRS").text = "EPSG:4326"
        ET.SubElement(root, "GeoTransform").text = ", ".join(
            _text(float(v)) for v in image.geotransform()
        )
    for band in range(image.bands):
        element = ET.SubElement(
            root,
            "VRTRasterBand",
            dataType=GDAL_TYPES[image.data_type],
            band=str(band + 1),
            subClass="VRTRawRasterBand",
        )
        ET.SubElement(element, "SourceFilename", relativeToVRT="1").text = raster_basename
        ET.SubElement(element, "ByteOrder").text = "LSB" if image.byte_order == "l" else "MSB"
        image_offset, pixel_offset, line_offset = image.band_offsets(band)
        ET.SubElement(element, "ImageOffset").text = str(image_offset)
        ET.SubElement(element, "PixelOffset").text = str(pixel_offset)
        ET.SubElement(element, "LineOffset").text = str(line_offset)
    ET.indent(root, space="    ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write_sidecars(raster: str | Path, image: IsceImage) -> tuple[Path, Path]:
    """Write ``<raster>.xml`` and ``<raster>.vrt``; check the raster's size matches first."""
    raster = Path(raster)
    if raster.exists() and raster.stat().st_size != image.expected_size:
        raise IsceImageError(
            f"{raster} has {raster.stat().st_size} bytes but {image.width}x{image.length}x"
            f"{image.bands} {image.data_type} needs {image.expected_size}"
        )
    xml_path = raster.with_name(raster.name + ".xml")
    vrt_path = raster.with_name(raster.name + ".vrt")
    write_text(xml_path, render_xml(image))
    write_text(vrt_path, render_vrt(image, raster.name))
    return xml_path, vrt_path


def write_raster(raster: str | Path, bands: list[np.ndarray], image: IsceImage) -> None:
    """Write band arrays with the image's interleave, then its sidecars."""
    raster = Path(raster)
    dtype = np.dtype(NUMPY_TYPES[image.data_type]).newbyteorder("<")
    stacked = np.stack([np.asarray(b, dtype=dtype) for b in bands])  # (bands, length, width)
    if image.scheme == "BIL":
        data = stacked.transpose(1, 0, 2)
    elif image.scheme == "BSQ":
        data = stacked
    else:
        data = stacked.transpose(1, 2, 0)
    with atomic_path(raster) as tmp:
        np.ascontiguousarray(data).tofile(tmp)
    write_sidecars(raster, image)


def normalise_name(name: str) -> str:
    """ISCE's property names ignore case and whitespace."""
    return "".join(name.split()).lower()


def parse_xml(xml_path: str | Path) -> ET.Element:
    """The root element of an ISCE XML file; IsceImageError when it is missing or not XML."""
    try:
        return ET.parse(xml_path).getroot()
    except OSError as exc:
        raise IsceImageError(f"{xml_path} is unreadable ({exc.strerror or exc})") from None
    except ET.ParseError as exc:
        raise IsceImageError(f"{xml_path} is not readable XML ({exc})") from None


def property_text(element: ET.Element) -> str:
    """A <property>'s value as ISCE reads it: a ``value`` attribute, a <value> child, or the
    element's own text (all three forms occur)."""
    if element.get("value") is not None:
        return element.get("value", "").strip()
    child = element.find("value")
    text = child.text if child is not None else element.text
    return (text or "").strip()


def _value(element: ET.Element) -> Any:
    text = property_text(element)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def iter_properties(xml_path: str | Path) -> Iterator[tuple[str, str]]:
    """(normalised name, text) of every <property> at any depth, in document order."""
    for element in parse_xml(xml_path).iter("property"):
        yield normalise_name(element.get("name", "")), property_text(element)


def component_properties(xml_path: str | Path) -> dict[str, str]:
    """``"<component>.<property>"`` -> text for each component's own properties (topsApp.xml)."""
    out: dict[str, str] = {}
    for component in parse_xml(xml_path).iter("component"):
        name = normalise_name(component.get("name", ""))
        for element in component.findall("property"):
            out[f"{name}.{normalise_name(element.get('name', ''))}"] = property_text(element)
    return out


def read_xml_properties(xml_path: str | Path) -> dict[str, Any]:
    """Properties of an ISCE image XML, with names normalised like ISCE does.

    Components become nested dicts (e.g. ``props["coordinate1"]["startingvalue"]``).
    """

    def walk(node: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in node:
            if child.tag == "property":
                out[normalise_name(child.get("name", ""))] = _value(child)
            elif child.tag == "component":
                out[normalise_name(child.get("name", ""))] = walk(child)
        return out

    return walk(parse_xml(xml_path))


def read_image(xml_path: str | Path) -> IsceImage:
    """Parse an ISCE image XML into an IsceImage; errors name the missing field."""
    props = read_xml_properties(xml_path)
    coords = []
    for name in ("coordinate1", "coordinate2"):
        comp = props.get(name)
        if not isinstance(comp, dict):
            raise IsceImageError(f"{xml_path}: component {name} is missing")
        missing = [k for k in ("startingvalue", "delta", "size") if k not in comp]
        if missing:
            raise IsceImageError(f"{xml_path}: {name} lacks {', '.join(missing)}")
        coords.append(comp)
    data_type = str(props.get("data_type", "")).upper()
    if data_type not in NUMPY_TYPES:
        raise IsceImageError(f"{xml_path}: data_type {data_type!r} is missing or unknown")
    if "file_name" not in props:
        raise IsceImageError(f"{xml_path}: file_name is missing")
    return IsceImage(
        file_name=str(props["file_name"]),
        width=int(coords[0]["size"]),
        length=int(coords[1]["size"]),
        data_type=data_type,
        bands=int(props.get("number_bands", 1)),
        scheme=str(props.get("scheme", "BIP")).upper(),
        first_lon=float(coords[0]["startingvalue"]),
        delta_lon=float(coords[0]["delta"]),
        first_lat=float(coords[1]["startingvalue"]),
        delta_lat=float(coords[1]["delta"]),
        image_type=str(props.get("image_type", "")),
        reference=str(props["reference"]) if "reference" in props else None,
        byte_order=str(props.get("byte_order", "l")),
    )


def read_band(raster: str | Path, band: int, image: IsceImage | None = None) -> np.ndarray:
    """One band (1-based) of an ISCE raster as a numpy array, via a memory map (no full read)."""
    raster = Path(raster)
    image = image or read_image(raster.with_name(raster.name + ".xml"))
    dtype = np.dtype(NUMPY_TYPES[image.data_type]).newbyteorder(
        "<" if image.byte_order == "l" else ">"
    )
    offset, pixel, line = image.band_offsets(band - 1)
    mm = np.memmap(raster, dtype=np.uint8, mode="r")
    n = image.nbytes
    strided = np.lib.stride_tricks.as_strided(
        mm[offset:], shape=(image.length, image.width, n), strides=(line, pixel, 1)
    )
    return np.ascontiguousarray(strided).view(dtype).reshape(image.length, image.width)
