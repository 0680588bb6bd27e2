"""ISCE file formats as ISCE 2.6.5 writes them: image .xml/.vrt sidecars, rasters, PICKLE xml.

Written from the real run in shared/fixtures/isce2-run-range-increase and the facts in
shared/reference/isce2 (isce_image_xml.md, products.json), independently of the workflow's own
isce_image module, so that a test comparing the two against the real run checks both.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

ISCE_VERSION = "Release: 2.6.5, svn-, 20260630. Current: svn-."
NUMPY = {"BYTE": "u1", "SHORT": "i2", "INT": "i4", "LONG": "i8", "FLOAT": "f4", "DOUBLE": "f8",
         "CFLOAT": "c8", "CDOUBLE": "c16"}  # fmt: skip
GDAL = {"BYTE": "Byte", "SHORT": "Int16", "INT": "Int32", "LONG": "Int64", "FLOAT": "Float32",
        "DOUBLE": "Float64", "CFLOAT": "CFloat32", "CDOUBLE": "CFloat64"}  # fmt: skip
DOCS = {
    "access_mode": "Image access mode.",
    "byte_order": "Endianness of the image.",
    "caster": "Type of conversion to be performed from input source to output source. Being input "
    "or output source will depend on the type of operations performed (read or write)",
    "data_type": "Image data type.",
    "description": "Image description",
    "extra_file_name": "For example name of vrt metadata.",
    "family": "Instance family name",
    "file_name": "Name of the image file.",
    "image_type": "Image type used for displaying.",
    "length": "Image length",
    "name": "Instance name",
    "number_bands": "Number of image bands.",
    "reference": "Geodetic datum",
    "scheme": "Interleaving scheme of the image.",
    "width": "Image width",
    "xmax": "Maximum range value",
    "xmin": "Minimum range value",
}
COORD_DOCS = {
    "delta": "Coordinate quantization.",
    "endingvalue": "Ending value of the coordinate.",
    "family": "Instance family name",
    "name": "Instance name",
    "size": "Coordinate size.",
    "startingvalue": "Starting value of the coordinate.",
}
COORD_COMPONENT_DOCS = {
    "coordinate1": "First coordinate of a 2D image (width).",
    "coordinate2": "Second coordinate of a 2D image (length).",
}


def nbytes(data_type: str) -> int:
    return int(np.dtype(NUMPY[data_type.upper()]).itemsize)


def _prop(indent: str, name: str, value: Any, doc: str | None) -> list[str]:
    lines = [f'{indent}<property name="{name}">', f"{indent}    <value>{_escape(str(value))}</value>"]
    if doc:
        lines.append(f"{indent}    <doc>{_escape(doc)}</doc>")
    lines.append(f"{indent}</property>")
    return lines


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_image_xml(props: dict[str, Any], coords: dict[str, dict[str, Any]]) -> str:
    """Image.renderHdr: properties and the two coordinate components, sorted by name."""
    items: list[tuple[str, Any]] = [(k, v) for k, v in props.items()]
    items += [(k, v) for k, v in coords.items()]
    lines = ["<imageFile>"]
    for name, value in sorted(items, key=lambda kv: kv[0]):
        if name in coords:
            lines.append(f'    <component name="{name}">')
            lines.append("        <factorymodule>isceobj.Image</factorymodule>")
            lines.append("        <factoryname>createCoordinate</factoryname>")
            lines.append(f"        <doc>{COORD_COMPONENT_DOCS[name]}</doc>")
            for key in sorted(value):
                lines += _prop("        ", key, value[key], COORD_DOCS.get(key))
            lines.append("    </component>")
        else:
            lines += _prop("    ", name, value, DOCS.get(name))
    lines.append("</imageFile>")
    return "\n".join(lines) + "\n"


def render_vrt(width: int, length: int, data_type: str, bands: int, scheme: str, basename: str,
               geotransform: tuple[float, ...] | None) -> str:  # fmt: skip
    """Image.renderVRT: a VRTRawRasterBand per band, relative source path."""
    n = nbytes(data_type)
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{length}">']
    if geotransform is not None:
        lines.append("    <SRS>EPSG:4326</SRS>")
        lines.append("    <GeoTransform>" + ", ".join(str(float(v)) for v in geotransform)
                     + "</GeoTransform>")  # fmt: skip
    for band in range(bands):
        if scheme == "BIL":
            offsets = (band * width * n, n, bands * width * n)
        elif scheme == "BSQ":
            offsets = (band * width * length * n, n, width * n)
        else:
            offsets = (band * n, bands * n, bands * width * n)
        lines += [
            f'    <VRTRasterBand dataType="{GDAL[data_type.upper()]}" band="{band + 1}" '
            'subClass="VRTRawRasterBand">',
            f'        <SourceFilename relativeToVRT="1">{basename}</SourceFilename>',
            "        <ByteOrder>LSB</ByteOrder>",
            f"        <ImageOffset>{offsets[0]}</ImageOffset>",
            f"        <PixelOffset>{offsets[1]}</PixelOffset>",
            f"        <LineOffset>{offsets[2]}</LineOffset>",
            "    </VRTRasterBand>",
        ]
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"


def write_image(
    workdir: Path,
    file_name: str,
    bands: list[np.ndarray] | None,
    *,
    width: int,
    length: int,
    data_type: str,
    scheme: str = "BIP",
    geo: tuple[float, float, float, float] | None = None,
    ending1: Any = None,
    family: str = "image",
    image_type: str | None = None,
    description: str | None = None,
    access_mode: str = "read",
    extra: bool = True,
    extra_props: dict[str, Any] | None = None,
    raw: bytes | None = None,
    xmax: Any = None,
) -> None:
    """Write a raster (bands, or raw filler bytes) with its .xml and .vrt, as ISCE does.

    file_name: the path as ISCE records it (relative to the run directory, e.g. merged/los.rdr).
    geo: (first_lon, delta_lon, first_lat, delta_lat) for geocoded images, else radar (0, 1).
    ending1/xmax: ISCE's geocoded images carry the radar input's xmax here (e.g. 1138.0), not
    the longitude where the grid ends; radar images made by multilooking keep the full width.
    """
    path = workdir / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    n_bands = len(bands) if bands is not None else 1
    if bands is not None:
        stacked = np.stack([np.asarray(b, dtype=NUMPY[data_type.upper()]) for b in bands])
        order = {"BIL": (1, 0, 2), "BSQ": (0, 1, 2)}.get(scheme, (1, 2, 0))
        np.ascontiguousarray(stacked.transpose(order)).astype("<" + NUMPY[data_type.upper()]).tofile(path)
    elif raw is not None:
        path.write_bytes(raw)
    if geo is None:
        c1 = {"startingvalue": 0, "delta": 1, "size": width, "endingvalue": width}
        c2 = {"startingvalue": 0, "delta": 1, "size": length, "endingvalue": length}
        xmin, transform = 0, None
        xmax = width if xmax is None else xmax
    else:
        lon0, dlon, lat0, dlat = geo
        end1 = ending1 if ending1 is not None else lon0 + width * dlon
        c1 = {"startingvalue": lon0, "delta": dlon, "size": width, "endingvalue": end1}
        c2 = {"startingvalue": lat0, "delta": dlat, "size": length, "endingvalue": lat0 + length * dlat}
        xmin, xmax, transform = lon0, end1, (lon0, dlon, 0.0, lat0, 0.0, dlat)
    for comp in (c1, c2):
        comp["family"] = "imagecoordinate"
        comp["name"] = "imagecoordinate_name"
    props: dict[str, Any] = {
        "ISCE_VERSION": ISCE_VERSION,
        "access_mode": access_mode,
        "byte_order": "l",
        "data_type": data_type,
        "family": family,
        "file_name": file_name,
        "length": length,
        "name": f"{family}_name",
        "number_bands": n_bands,
        "scheme": scheme,
        "width": width,
        "xmax": xmax,
        "xmin": xmin,
    }
    if extra:
        props["extra_file_name"] = file_name + ".vrt"
    if image_type:
        props["image_type"] = image_type
    if description is not None:
        props["description"] = description
    props.update(extra_props or {})
    xml = render_image_xml(props, {"coordinate1": c1, "coordinate2": c2})
    Path(str(path) + ".xml").write_text(xml)
    Path(str(path) + ".vrt").write_text(
        render_vrt(width, length, data_type, n_bands, scheme, path.name, transform)
    )


# --- reading ------------------------------------------------------------------------------------


def norm(name: str) -> str:
    return "".join(name.split()).lower()


def evaluate(text: str | None) -> Any:
    try:
        return ast.literal_eval((text or "").strip())
    except (ValueError, SyntaxError, TypeError):
        return (text or "").strip()


def read_xml_tree(path: Path) -> dict[str, Any]:
    """ISCE's reading of an image XML: normalised names, evaluated values, nested components."""

    def walk(node: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in node:
            if child.tag == "property":
                value = child.get("value")
                if value is None:
                    v = child.find("value")
                    value = v.text if v is not None else child.text
                out[norm(child.get("name", ""))] = evaluate(value)
            elif child.tag == "component":
                out[norm(child.get("name", ""))] = walk(child)
        return out

    return walk(ET.parse(path).getroot())


def read_raster(workdir: Path, file_name: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Bands of a raster written by ISCE (or by us), through its .xml."""
    path = workdir / file_name
    props = read_xml_tree(Path(str(path) + ".xml"))
    width = int(props["coordinate1"]["size"])
    length = int(props["coordinate2"]["size"])
    bands = int(props.get("number_bands", 1))
    data_type = str(props["data_type"]).upper()
    scheme = str(props.get("scheme", "BIP")).upper()
    data = np.fromfile(path, dtype="<" + NUMPY[data_type])
    if scheme == "BIL":
        cube = data.reshape(length, bands, width).transpose(1, 0, 2)
    elif scheme == "BSQ":
        cube = data.reshape(bands, length, width)
    else:
        cube = data.reshape(length, width, bands).transpose(2, 0, 1)
    return [cube[b] for b in range(bands)], props


# --- PICKLE/<step>.xml --------------------------------------------------------------------------

CONTEXT_DOCS: dict[str, str | None] = {
    "applywatermask": "Flag to apply water mask to images before unwrapping.",
    "coarsecoregdirectoryname": "coarse coregistered slc directory name",
    "coarseinterferogramdirectoryname": "Coarse interferogram directory",
    "coarseoffsetsdirectoryname": "coarse offsets directory name",
    "coherencename": "Coherence file name",
    "commonburststartreferenceindex": "Reference burst start index for common bursts",
    "commonburststartsecondaryindex": "Secondary burst start index for common bursts",
    "connectedcomponentfilename": None,
    "correlationname": "Correlation file name",
    "demcropfilename": None,
    "esddirectoryname": "ESD directory",
    "family": "Instance family name",
    "filteredinterferogramname": "Filtered interferogram filename",
    "filteredoffsetfilename": "Filename for filtered dense offsets BIL.",
    "finecoregdirectoryname": "fine coregistered slc directory name",
    "fineinterferogramdirectoryname": "Fine interferogram directory",
    "fineoffsetsdirectoryname": "fine offsets directory name",
    "geocodelist": "List of files to geocode",
    "geometrydirectoryname": "Geometry directory",
    "mergedinterferogramname": "Filename of the merged interferogram.",
    "mergedlosname": "Merged los file name",
    "mergedproductsdirectoryname": "Merged product directory",
    "name": "Instance name",
    "numberofcommonbursts": "Number of common bursts between secondary and reference",
    "numberofswaths": "Number of swaths",
    "offsetcovariancefilename": "Filename for gross dense offsets covariance. Used in runDenseOffsets.",
    "offsetfilename": "Filename for gross dense offsets BIL. Used in runDenseOffsets.",
    "offsetgeocodelist": "List of files on offset grid to geocode",
    "offsetsnrfilename": "Filename for gross dense offsets SNR. Used in runDenseOffsets.",
    "overlapssubdirectoryname": "Overlap region processing directory",
    "referenceslcproduct": "Directory name of the reference SLC product",
    "secondaryrangecorrection": "Range correction in m to apply to secondary",
    "secondaryslcproduct": "Directory name of the secondary SLC product",
    "secondarytimingcorrection": "Timing correction in secs to apply to secondary",
    "unmaskedfilenameprefix": "Prefix prepended to the image filenames that have not been water masked",
    "unwrapped2stagefilename": "Output File name of 2Stage unwrapper",
    "unwrappedinterferogramfilename": None,
    "watermaskfilename": "Filename of the water body mask image in radar coordinate cropped to the "
    "interferogram size.",
}


def render_context(values: dict[str, Any]) -> str:
    """PICKLE/<step>.xml: the TopsProc state, sorted by name (renderer 'xml')."""
    lines = ["<topsAppContext>"]
    for name in sorted(values):
        lines += _prop("    ", name, values[name], CONTEXT_DOCS.get(name))
    lines.append("</topsAppContext>")
    return "\n".join(lines) + "\n"
