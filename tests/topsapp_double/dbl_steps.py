"""The steps of topsApp, as files on disk (topsapp_steps.json) with a synthetic signal.

Every step writes what ISCE's step writes, with ISCE's names, data types, band layouts and
sidecars. Burst-level intermediates (geometry, offsets, coregistered bursts, burst
interferograms) are filler rasters of DINSAR_DOUBLE_BURST_BYTES bytes each (default 4096), so a
disk test can make them as large as it likes. The merged, filtered, unwrapped and geocoded
products carry real content: the deformation of dbl_geometry on the annotation's geometry.

DINSAR_DOUBLE_FAIL_AT=<step>, or a file named by DINSAR_DOUBLE_FAIL_FLAG that contains <step>,
makes that step raise (exit 1) before it writes anything.

DINSAR_DOUBLE_HOLD_AT=<step> makes that step start (its "Running step" line), print
"holding in step <step> (pid N)" and wait, like a long real step, until a signal ends the
process (Ctrl-C: a KeyboardInterrupt traceback, as the real topsApp.py prints one).
DINSAR_DOUBLE_HOLD_AT=help holds the version probe (``--help``) instead: see topsApp.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import pickle
import re
import time
from pathlib import Path
from typing import Any

import dbl_geometry as geom
import numpy as np
from dbl_config import IsceExit, Settings, missing_key_message
from dbl_formats import (
    ISCE_VERSION,
    nbytes,
    read_raster,
    read_xml_tree,
    render_context,
    write_image,
)
from dbl_sentinel import EPOCH, C, burst_vrt, read_swath, secs

STEPS = [
    "startup", "preprocess", "computeBaselines", "verifyDEM", "topo", "subsetoverlaps",
    "coarseoffsets", "coarseresamp", "overlapifg", "prepesd", "esd", "rangecoreg", "fineoffsets",
    "fineresamp", "ion", "burstifg", "mergebursts", "filter", "unwrap", "unwrap2stage", "geocode",
    "denseoffsets", "filteroffsets", "geocodeoffsets",
]  # fmt: skip
DEFAULT_GEOCODE = [
    "merged/phsig.cor", "merged/topophase.cor", "merged/filt_topophase.unw", "merged/los.rdr",
    "merged/topophase.flat", "merged/filt_topophase.flat", "merged/filt_topophase_2stage.unw",
    "topophase.ion",
]  # fmt: skip
CONTEXT_DEFAULTS: dict[str, Any] = {
    "applywatermask": True, "coarsecoregdirectoryname": "coarse_coreg",
    "coarseinterferogramdirectoryname": "coarse_interferogram",
    "coarseoffsetsdirectoryname": "coarse_offsets", "coherencename": "phsig.cor",
    "correlationname": "topophase.cor", "demcropfilename": "dem.crop", "esddirectoryname": "ESD",
    "family": "topscontext", "filteredinterferogramname": "filt_topophase.flat",
    "filteredoffsetfilename": "filt_dense_offsets.bil", "finecoregdirectoryname": "fine_coreg",
    "fineinterferogramdirectoryname": "fine_interferogram",
    "fineoffsetsdirectoryname": "fine_offsets", "geometrydirectoryname": "geom_reference",
    "mergedinterferogramname": "topophase.flat", "mergedlosname": "los.rdr",
    "mergedproductsdirectoryname": "merged", "name": "topsAppContext", "numberofswaths": 0,
    "offsetcovariancefilename": "dense_offsets_cov.bil", "offsetfilename": "dense_offsets.bil",
    "offsetgeocodelist": ["merged/dense_offsets.bil", "merged/dense_offsets_snr.bil",
                          "merged/dense_offsets_cov.bil", "merged/filt_dense_offsets.bil"],
    "offsetsnrfilename": "dense_offsets_snr.bil", "overlapssubdirectoryname": "overlaps",
    "referenceslcproduct": "reference", "secondaryrangecorrection": 0.0,
    "secondaryslcproduct": "secondary", "secondarytimingcorrection": 0.0,
    "unmaskedfilenameprefix": "unmasked", "unwrapped2stagefilename": "filt_topophase_2stage.unw",
    "unwrappedinterferogramfilename": "filt_topophase.unw", "watermaskfilename": "waterMask.msk",
}  # fmt: skip
LOS_DESCRIPTION = (
    "[\"['Two channel Line-Of-Sight geometry image (all angles in degrees). Represents vector "
    "drawn from target to platform. \\\\n                Channel 1: Incidence angle measured "
    "from vertical at target (always +ve).\\\\n                Channel 2: Azimuth angle measured "
    "from North in Anti-clockwise direction.']\"]"
)
UNW_DESCRIPTION = (
    "[\"['$ISCE_HOME/applications/imageMath.py -e=a_0*(abs(b)!=0);a_1*(abs(b)!=0) --a=tmp.unw "
    "--b=merged/filt_topophase.flat -s BIL -o=merged/filt_topophase.unw']\"]"
)
DEM_KEYS = {
    "isce_version", "access_mode", "byte_order", "caster", "coordinate1", "coordinate2",
    "data_type", "description", "extra_file_name", "family", "file_name", "image_type", "length",
    "name", "number_bands", "reference", "scheme", "width", "xmax", "xmin", "metadata_location",
    "delta_latitude", "delta_longitude", "first_latitude", "first_longitude",
}  # fmt: skip
COORD_KEYS = {"delta", "endingvalue", "family", "name", "size", "startingvalue"}
DEM_CLASS = "<class 'isceobj.Image.DemImage.DemImage'>"


def filler_bytes() -> int:
    return max(64, int(os.environ.get("DINSAR_DOUBLE_BURST_BYTES") or "4096"))


class Run:
    """One topsApp invocation: settings, the state ISCE pickles, and the step functions."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.s = settings
        self.dir = workdir
        geocode = settings["geocodelist"]
        context = dict(CONTEXT_DEFAULTS)
        context["geocodelist"] = list(geocode) if geocode is not None else list(DEFAULT_GEOCODE)
        context["referenceslcproduct"] = settings.sensors["reference"].get("outputdirectory") or "reference"
        context["secondaryslcproduct"] = settings.sensors["secondary"].get("outputdirectory") or "secondary"
        self.state: dict[str, Any] = {"context": context, "swaths": {}, "extracted": {}}

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def ctx(self) -> dict[str, Any]:
        return self.state["context"]

    def load(self, step: str) -> None:
        """Application.loadPickleObj: a missing file is printed and ignored (fresh state)."""
        path = self.dir / "PICKLE" / step
        try:
            with open(path, "rb") as handle:
                loaded = pickle.load(handle)
            (self.dir / "PICKLE" / f"{step}.xml").read_text()
        except OSError:
            print(f"Cannot open {path}")
            return
        # the input XML is re-read on every run; only the processing state comes from PICKLE
        loaded["context"]["geocodelist"] = self.ctx["geocodelist"]
        self.state = loaded

    def dump(self, step: str) -> None:
        folder = self.dir / "PICKLE"
        folder.mkdir(exist_ok=True)
        (folder / step).write_bytes(pickle.dumps(self.state))
        (folder / f"{step}.xml").write_text(render_context(self._context_values()))
        self._write_topsproc()

    def _context_values(self) -> dict[str, Any]:
        values = {}
        for key, value in self.ctx.items():
            values[key] = value if not isinstance(value, bool) else ("True" if value else "False")
        return values

    def _write_topsproc(self) -> None:
        swaths = sorted(self.state["swaths"])
        (self.dir / "topsProc.xml").write_text(
            "<topsProc>\n    <insarProc>\n"
            f"        <ISCE_VERSION>{ISCE_VERSION.rstrip('.')}</ISCE_VERSION>\n    </insarProc>\n"
            "    <common>\n"
            f"        <Input_list_of_swaths_to_process:_>{swaths}</Input_list_of_swaths_to_process:_>\n"
            "    </common>\n</topsProc>\n"
        )

    def log(self, text: str) -> None:
        with open(self.dir / "isce.log", "a") as handle:
            handle.write(f"{dt.datetime.now():%Y-%m-%d %H:%M:%S},000 - isce.topsinsar - INFO - {text}\n")
        print(text)

    def run(self, step: str) -> None:
        wanted = os.environ.get("DINSAR_DOUBLE_FAIL_AT", "")
        flag = os.environ.get("DINSAR_DOUBLE_FAIL_FLAG")
        if flag and Path(flag).is_file():
            wanted = Path(flag).read_text().strip() or wanted
        if wanted == step:
            raise RuntimeError(f"DINSAR_DOUBLE_FAIL_AT: injected failure in step {step}")
        self.log(f"Running step {step}")
        if os.environ.get("DINSAR_DOUBLE_HOLD_AT") == step:
            print(f"holding in step {step} (pid {os.getpid()})", flush=True)
            for _ in range(6000):  # at most 10 minutes: a forgotten double ends by itself
                time.sleep(0.1)
        getattr(self, "step_" + step)()

    def _filler(self, file_name: str, data_type: str, bands: int = 1, scheme: str = "BIP",
                image_type: str | None = None) -> None:  # fmt: skip
        size = filler_bytes()
        length = 16
        width = max(1, size // (nbytes(data_type) * bands * length))
        raw = bytes(width * length * bands * nbytes(data_type))
        write_image(self.dir, file_name, None, width=width, length=length, data_type=data_type,
                    scheme=scheme, image_type=image_type, raw=raw)  # fmt: skip

    def _processed(self) -> list[int]:
        """Swaths with common bursts (computeBaselines)."""
        counts = self.ctx.get("numberofcommonbursts")
        if counts is None:
            raise TypeError("'NoneType' object is not subscriptable")
        return [n for n in (1, 2, 3) if counts[n - 1] > 0]

    # --- steps ------------------------------------------------------------------------------

    def step_startup(self) -> None:
        self.state["started"] = dt.datetime.now().isoformat()

    def step_preprocess(self) -> None:
        swaths = self.s["swaths"]
        if len(swaths) == 0:  # TypeError for a bare int, as getInputSwathList's len()
            swaths = [1, 2, 3]
        roi = self.s["regionofinterest"] or []
        virtual = bool(self.s["usevirtualfiles"])
        for swath in swaths:
            for role in ("reference", "secondary"):
                sensor = self.s.sensors[role]
                output = sensor.get("outputdirectory")
                out = os.path.join(output, f"IW{swath}")  # TypeError for None, as ISCE
                try:
                    meta = read_swath(sensor, swath, roi)
                except Exception as err:  # noqa: BLE001 - ISCE only prints it
                    print(f"Could not extract swath {swath} from {sensor.get('safe')}")
                    print("Generated error: ", err)
                    continue
                self._extract(meta, out, virtual, sensor)
                self.state["extracted"].setdefault(role, {})[swath] = _swath_record(meta, out)
        self.ctx["numberofswaths"] = 3  # Sentinel1.maxSwaths

    def _extract(self, meta: Any, out: str, virtual: bool, sensor: dict[str, Any]) -> None:
        folder = self.dir / out
        folder.mkdir(parents=True, exist_ok=True)
        aux = meta.ipf == "002.36" and sensor.get("auxiliarydatadirectory")
        if meta.ipf == "002.36" and not aux:
            print("Warning:  Strongly recommend using auxiliary information")
        width, length = meta.samples, meta.lines
        for index, burst in enumerate(meta.bursts):
            name = f"{out}/burst_{index + 1:02d}.slc"
            line_offset = (burst.number - 1) * meta.lines
            if virtual and not aux:
                write_image(self.dir, name, None, width=width, length=length, data_type="cfloat",
                            family="slcimage", image_type="slc", extra=False,
                            description="['Single look complex image.']")  # fmt: skip
                (self.dir / f"{name}.vrt").write_text(burst_vrt(burst, width, length, line_offset, folder))
            else:
                self._filler(name, "CFLOAT", image_type="slc")
        _write_product(self.dir / f"{out}.xml", meta, out)

    def step_computeBaselines(self) -> None:  # noqa: N802 - ISCE's step name
        ref = self.state["extracted"].get("reference", {})
        sec = self.state["extracted"].get("secondary", {})
        start_ref, start_sec, count = [-1, -1, -1], [-1, -1, -1], [0, 0, 0]
        for swath in (1, 2, 3):
            if swath in ref and swath in sec:
                start_ref[swath - 1] = 0
                start_sec[swath - 1] = 0
                count[swath - 1] = min(len(ref[swath]["bursts"]), len(sec[swath]["bursts"]))
        self.ctx["commonburststartreferenceindex"] = start_ref
        self.ctx["commonburststartsecondaryindex"] = start_sec
        self.ctx["numberofcommonbursts"] = count
        if max(count) < 2:
            print("No swaths contain any burst overlaps ... cannot use ESD")
        self.state["swaths"] = {n: ref[n] for n in (1, 2, 3) if count[n - 1] > 0}
        for n, record in self.state["swaths"].items():
            record["secondary_start"] = sec[n]["t_start"]

    def _dem(self, key: str) -> dict[str, Any]:
        """runVerifyDEM: load <dem>.xml with ISCE's rules, render <dem>.vrt if missing."""
        name = self.s[key] or (self.s["demfilename"] if key == "geocodedemfilename" else "")
        if not name:
            raise RuntimeError(
                "no demFilename: ISCE would download and stitch SRTM over the network here"
            )
        xml = Path(f"{name}.xml")
        if not xml.is_file():
            raise OSError(f"[Errno 2] No such file or directory: '{xml}'")
        props = read_xml_tree(xml)
        for k in props:
            if k not in DEM_KEYS:
                raise IsceExit("isce.Image.DemImageBase - ERROR - " + missing_key_message(k, DEM_CLASS))
        coords = [props.get("coordinate1"), props.get("coordinate2")]
        vrt = Path(f"{props.get('file_name', name)}.vrt")
        if not all(isinstance(c, dict) and "size" in c for c in coords):
            raise TypeError("int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
        for c in coords:
            for k in c:
                if k not in COORD_KEYS:
                    raise IsceExit(missing_key_message(k, "<class 'isceobj.Image.Image.ImageCoordinate'>"))
            if "startingvalue" not in c or "delta" not in c:
                # ISCE assumes start 0, step 1 and topo "succeeds" with heights -500: silently
                # wrong. The double refuses, so that tests see the problem.
                raise RuntimeError(
                    f"{xml}: coordinate lacks startingValue/delta (ISCE would silently use 0 and 1)"
                )
        reference = str(props.get("reference", "EGM96")).upper()
        if reference not in ("WGS84", "EGM96"):
            raise Exception(f"Unknown reference system for DEM: {reference}")  # noqa: TRY002
        data_type = str(props.get("data_type", "SHORT")).upper()
        width, length = int(coords[0]["size"]), int(coords[1]["size"])
        raster = Path(str(props.get("file_name", name)))
        if not vrt.is_file():
            from dbl_formats import render_vrt

            transform = (coords[0]["startingvalue"], coords[0]["delta"], 0.0,
                         coords[1]["startingvalue"], 0.0, coords[1]["delta"])  # fmt: skip
            vrt.write_text(render_vrt(width, length, data_type, 1, "BIP", raster.name, transform))
        return {
            "file": str(raster), "reference": reference, "data_type": data_type, "width": width,
            "length": length, "lon0": float(coords[0]["startingvalue"]),
            "dlon": float(coords[0]["delta"]), "lat0": float(coords[1]["startingvalue"]),
            "dlat": float(coords[1]["delta"]),
        }  # fmt: skip

    def step_verifyDEM(self) -> None:  # noqa: N802 - ISCE's step name
        self.state["dem"] = self._dem("demfilename")

    def step_topo(self) -> None:
        dem = self._dem("demfilename")  # runTopo calls verifyDEM again
        raster = Path(dem["file"])
        expected = dem["width"] * dem["length"] * nbytes(dem["data_type"])
        if not raster.is_file() or raster.stat().st_size < expected:
            raise OSError(f"DEM {raster} is shorter than its .xml says (GDAL read error)")
        swaths = self._processed()
        if not swaths:
            raise IndexError("too many indices for array: array is 1-dimensional, but 2 were indexed")
        for n in swaths:
            for b in range(self.ctx["numberofcommonbursts"][n - 1]):
                for kind in ("lat", "lon", "hgt"):
                    self._filler(f"geom_reference/IW{n}/{kind}_{b + 1:02d}.rdr", "DOUBLE")
                self._filler(f"geom_reference/IW{n}/los_{b + 1:02d}.rdr", "FLOAT", 2, "BIL", "bil")

    def _esd(self) -> bool:
        return bool(self.s["doesd"])

    def _overlaps(self) -> list[tuple[int, int]]:
        return [(n, b) for n in self._processed()
                for b in range(1, self.ctx["numberofcommonbursts"][n - 1])]  # fmt: skip

    def step_subsetoverlaps(self) -> None:
        if not self._esd():
            return
        ref = self.ctx["referenceslcproduct"]
        for n, b in self._overlaps():
            for kind in ("lat", "lon", "hgt"):
                self._filler(f"geom_reference/overlaps/IW{n}/{kind}_{b:02d}_{b + 1:02d}.rdr", "DOUBLE")
            for side in ("top", "bot"):
                self._filler(f"{ref}/overlaps/IW{n}/burst_{side}_{b:02d}_{b + 1:02d}.slc", "CFLOAT")

    def step_coarseoffsets(self) -> None:
        if not self._esd():
            return
        for n, b in self._overlaps():
            for kind in ("range", "azimuth"):
                for side in ("top", "bot"):
                    self._filler(f"coarse_offsets/overlaps/IW{n}/{kind}_{side}_{b:02d}_{b + 1:02d}.off", "FLOAT")

    def step_coarseresamp(self) -> None:
        if not self._esd():
            return
        for n, b in self._overlaps():
            for side in ("top", "bot"):
                self._filler(f"coarse_coreg/overlaps/IW{n}/burst_{side}_{b:02d}_{b + 1:02d}.slc", "CFLOAT")

    def step_overlapifg(self) -> None:
        if not self._esd():
            return
        for n, b in self._overlaps():
            for side in ("top", "bot"):
                self._filler(f"coarse_interferogram/overlaps/IW{n}/burst_{side}_{b:02d}_{b + 1:02d}.int", "CFLOAT")

    def step_prepesd(self) -> None:
        if not self._esd():
            return
        for n, b in self._overlaps():
            self._filler(f"ESD/overlap_IW{n}_{b:02d}.int", "CFLOAT")
            self._filler(f"ESD/freq_IW{n}_{b:02d}.bin", "FLOAT")

    def step_esd(self) -> None:
        if not self._esd():
            return
        if not self._overlaps():
            # what ISCE2 2.6.5's runESD raises when it skipped every swath (< 2 common bursts)
            raise Exception("Coherence threshold too strict. No points left for reliable ESD estimate")  # noqa: TRY002
        for n in self._processed():
            for ext in ("int", "cor", "off", "freq"):
                self._filler(f"ESD/combined_IW{n}.{ext}", "FLOAT")
        self.ctx["secondarytimingcorrection"] = 0.0

    def step_rangecoreg(self) -> None:
        if not self._esd():
            return
        self.ctx["secondaryrangecorrection"] = 0.0

    def step_fineoffsets(self) -> None:
        for n in self._processed():
            for b in range(self.ctx["numberofcommonbursts"][n - 1]):
                for kind in ("range", "azimuth"):
                    self._filler(f"fine_offsets/IW{n}/{kind}_{b + 1:02d}.off", "FLOAT")

    def step_fineresamp(self) -> None:
        for n in self._processed():
            for b in range(self.ctx["numberofcommonbursts"][n - 1]):
                self._filler(f"fine_coreg/IW{n}/burst_{b + 1:02d}.slc", "CFLOAT", image_type="slc")
            record = self.state["swaths"][n]
            (self.dir / "fine_coreg" / f"IW{n}.xml").write_text(_product_xml(record, f"fine_coreg/IW{n}"))

    def step_ion(self) -> None:
        if not self.s["doionospherecorrection"]:
            return
        self._filler("ion/ion_cal/filt.ion", "FLOAT")

    def step_burstifg(self) -> None:
        if not self.s["dointerferogram"]:
            return
        al, rl = self.s["azimuthlooks"], self.s["rangelooks"]
        for n in self._processed():
            for b in range(self.ctx["numberofcommonbursts"][n - 1]):
                base = f"fine_interferogram/IW{n}/burst_{b + 1:02d}"
                self._filler(f"{base}.int", "CFLOAT", image_type="cpx")
                self._filler(f"{base}.{al}alks_{rl}rlks.int", "CFLOAT", image_type="cpx")
                self._filler(f"{base}.cor", "FLOAT", 2, "BIL", "cor")
            record = self.state["swaths"][n]
            (self.dir / "fine_interferogram" / f"IW{n}.xml").write_text(
                _product_xml(record, f"fine_interferogram/IW{n}")
            )

    # --- merged products --------------------------------------------------------------------

    def _swath_list(self) -> list[dict[str, Any]]:
        return [self.state["swaths"][n] for n in sorted(self.state["swaths"])]

    def step_mergebursts(self) -> None:
        swaths = self._swath_list()
        if not swaths:
            raise IndexError("list index out of range")
        al, rl = int(self.s["azimuthlooks"]), int(self.s["rangelooks"])
        grid = geom.radar_grid(swaths, al, rl)
        self.state["grid"] = grid
        px = geom.pixel_geometry(grid, swaths)
        valid = px["valid"]
        ref_t = swaths[0]["t_start"]
        sec_t = swaths[0]["secondary_start"]
        years = (sec_t - ref_t) / (365.25 * 86400)
        roi = self.s["regionofinterest"] or list(_union_bbox(swaths))
        dr = geom.deformation(px["lat"], px["lon"], roi, years)
        wavelength = swaths[0]["wavelength"]
        phase = 4 * np.pi / wavelength * dr  # ifg = ref * conj(sec): + range increase
        amp = 100.0 + 20.0 * np.cos(np.radians(px["lat"]) * 400) * np.sin(np.radians(px["lon"]) * 400)
        coh = 0.75 + 0.2 * np.cos(np.radians(px["lat"]) * 900) * np.cos(np.radians(px["lon"]) * 700)
        ifg = np.where(valid, amp * np.exp(1j * phase), 0).astype(np.complex64)
        length, width = grid["length"], grid["width"]
        suffix = "" if al == rl == 1 else ".full"
        virtual = bool(self.s["usevirtualfiles"])
        fw, fl = grid["full_width"], grid["full_length"]
        full = [("lat.rdr", "DOUBLE", 1, "BIP", None), ("lon.rdr", "DOUBLE", 1, "BIP", None),
                ("z.rdr", "DOUBLE", 1, "BIP", None), ("los.rdr", "FLOAT", 2, "BIL", "bil"),
                ("reference.slc", "CFLOAT", 1, "BIP", "slc"), ("secondary.slc", "CFLOAT", 1, "BIP", "slc"),
                ("topophase.flat", "CFLOAT", 1, "BIP", "cpx"), ("topophase.cor", "FLOAT", 2, "BIL", "cor")]  # fmt: skip
        if suffix:
            for name, data_type, bands, scheme, image_type in full:
                if virtual:
                    write_image(self.dir, f"merged/{name}{suffix}", None, width=fw, length=fl,
                                data_type=data_type, scheme=scheme, image_type=image_type)  # fmt: skip
                else:
                    self._filler(f"merged/{name}{suffix}", data_type, bands, scheme, image_type)
        # multilooked from the full-resolution merge: ISCE keeps the full width as xmax
        full_x = float(fw)
        write_image(self.dir, "merged/topophase.flat", [ifg], width=width, length=length,
                    data_type="CFLOAT", family="intimage", image_type="cpx", xmax=full_x)  # fmt: skip
        write_image(self.dir, "merged/topophase.cor",
                    [np.where(valid, amp, 0), np.where(valid, coh, 0)], width=width, length=length,
                    data_type="FLOAT", scheme="BIL", family="intimage", image_type="cor",
                    xmax=full_x)  # fmt: skip
        write_image(self.dir, "merged/los.rdr",
                    [np.where(valid, px["inc"], 0), np.where(valid, px["az"], 0)], width=width,
                    length=length, data_type="FLOAT", scheme="BIL", family="intimage",
                    image_type="bil", description=LOS_DESCRIPTION, xmax=full_x)  # fmt: skip
        if self.s["doionospherecorrection"]:
            write_image(self.dir, "merged/topophase.ion", [np.zeros((length, width))], width=width,
                        length=length, data_type="FLOAT")  # fmt: skip

    def step_filter(self) -> None:
        if not self.s["dointerferogram"]:
            return
        (ifg,), _ = read_raster(self.dir, "merged/topophase.flat")
        valid = ifg != 0
        filt = np.where(valid, geom.box_mean(ifg, 3), 0).astype(np.complex64)
        unit = np.where(valid, ifg / np.where(valid, np.abs(ifg), 1), 0)
        phsig = np.where(valid, np.abs(geom.box_mean(unit, 5)), 0)
        length, width = ifg.shape
        write_image(self.dir, "merged/filt_topophase.flat", [filt], width=width, length=length,
                    data_type="CFLOAT", family="intimage", image_type="cpx")  # fmt: skip
        write_image(self.dir, "merged/phsig.cor", [phsig], width=width, length=length,
                    data_type="FLOAT", family="intimage", image_type="cor")  # fmt: skip
        if icu_patches(length) == 0:
            # ISCE's phase sigma comes from ICU, which works in azimuth patches: with 264 lines or
            # fewer it makes none, "completes normally" and leaves an empty phsig.cor whose
            # .xml says length -1 (seen with ISCE2 2.6.5 on a one-burst pair at 7 looks)
            (self.dir / "merged/phsig.cor").write_bytes(b"")
            xml = self.dir / "merged/phsig.cor.xml"
            xml.write_text(re.sub(r'(<property name="length">\s*<value>)\d+', r"\g<1>-1",
                                  xml.read_text()))  # fmt: skip

    def step_unwrap(self) -> None:
        if not self.s["dounwrap"]:
            return
        unwrapper = str(self.s["unwrappername"]).lower()
        (filt,), _ = read_raster(self.dir, "merged/filt_topophase.flat")
        read_raster(self.dir, "merged/phsig.cor")  # snaphu's coherence input must exist
        valid = filt != 0
        unw = geom.unwrap_2d(np.angle(filt), valid)
        length, width = filt.shape
        write_image(self.dir, "merged/filt_topophase.unw",
                    [np.where(valid, np.abs(filt), 0), unw], width=width, length=length,
                    data_type="FLOAT", scheme="BIL", family="intimage",
                    description=UNW_DESCRIPTION)  # fmt: skip
        conncomp = "merged/filt_topophase.conncomp" if unwrapper == "icu" else "merged/filt_topophase.unw.conncomp"
        write_image(self.dir, conncomp, [valid.astype(np.uint8)], width=width, length=length,
                    data_type="BYTE", family="intimage")  # fmt: skip
        self.ctx["connectedcomponentfilename"] = conncomp

    def step_unwrap2stage(self) -> None:
        if not (self.s["dounwrap"] and self.s["dounwrap2stage"]):
            return
        if str(self.s["unwrappername"]).lower() in ("icu", "grass"):
            return
        raise ModuleNotFoundError("No module named 'pulp' (do unwrap 2 stage needs PuLP)")

    def step_geocode(self) -> None:
        if not self.s["dointerferogram"]:
            return
        swaths = self._swath_list()
        grid = self.state["grid"]
        dem = self._dem("geocodedemfilename")
        bbox = self.s["geocodeboundingbox"] or list(_union_bbox(swaths))
        if len(bbox) != 4:
            raise ValueError("Expected 4 values for geocode bounding box")
        g = geom.geozero_grid(bbox, dem)
        lat = g["first_lat"] + g["dlat"] * np.arange(g["length"])
        lon = g["first_lon"] + g["dlon"] * np.arange(g["width"])
        lon2, lat2 = np.meshgrid(lon, lat)
        line, sample, valid = geom.geo_to_radar(grid, swaths, lat2.ravel(), lon2.ravel())
        products = [p for p in self.ctx["geocodelist"] if (self.dir / p).is_file()]
        print(f"Number of products to geocode: {len(products)}")
        geo = (g["first_lon"], g["dlon"], g["first_lat"], g["dlat"])
        for product in products:
            bands, props = read_raster(self.dir, product)
            out = []
            for band in bands:
                values = np.zeros(lat2.size, dtype=band.dtype)
                values[valid] = band[line[valid], sample[valid]]
                out.append(values.reshape(g["length"], g["width"]))
            extra = {"caster": "FloatToByteCaster"} if str(props["data_type"]).upper() == "BYTE" else None
            write_image(self.dir, product + ".geo", out, width=g["width"], length=g["length"],
                        data_type=str(props["data_type"]).upper(), scheme=str(props.get("scheme", "BIP")),
                        geo=geo, ending1=float(props.get("xmax", g["width"])), family="intimage",
                        image_type=props.get("image_type"),
                        description=props.get("description"), extra_props=extra)  # fmt: skip
        crop = _dem_crop(dem, g)
        write_image(self.dir, "merged/dem.crop", [crop], width=g["width"], length=g["length"],
                    data_type="short", family="demimage", image_type="dem", access_mode="writeread",
                    extra_props={"reference": "EGM96"})  # fmt: skip

    def step_denseoffsets(self) -> None:
        if self.s["dodenseoffsets"]:
            self._filler("merged/dense_offsets.bil", "FLOAT", 2, "BIL")

    def step_filteroffsets(self) -> None:
        if self.s["dodenseoffsets"]:
            self._filler("merged/filt_dense_offsets.bil", "FLOAT", 2, "BIL")

    def step_geocodeoffsets(self) -> None:
        return None


ICU_AZIMUTH_BUFFER, ICU_OVERLAP = 3700, 264  # icu.F: i_azbuf; i_azcomlin 200 + 2 * NFFT 32


def icu_patches(lines: int) -> int:
    """icu.F's number of azimuth patches for an interferogram of ``lines`` lines."""
    skip = ICU_AZIMUTH_BUFFER - ICU_OVERLAP
    return lines // skip if lines % skip <= ICU_OVERLAP else lines // skip + 1


def _union_bbox(swaths: list[dict[str, Any]]) -> tuple[float, float, float, float]:
    boxes = [s["bbox"] for s in swaths]
    return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes),
            max(b[3] for b in boxes))  # fmt: skip


def _dem_crop(dem: dict[str, Any], g: dict[str, Any]) -> np.ndarray:
    from dbl_formats import NUMPY

    data = np.fromfile(dem["file"], dtype="<" + NUMPY[dem["data_type"]]).reshape(dem["length"], dem["width"])
    rows = g["row0"] + np.arange(g["length"])
    cols = g["col0"] + np.arange(g["width"])
    out = np.zeros((g["length"], g["width"]), dtype=np.int16)
    r_ok = (rows >= 0) & (rows < dem["length"])
    c_ok = (cols >= 0) & (cols < dem["width"])
    out[np.ix_(r_ok, c_ok)] = data[np.ix_(rows[r_ok], cols[c_ok])].astype(np.int16)
    return out


def _swath_record(meta: Any, out: str) -> dict[str, Any]:
    """What later steps need of a swath (pickled in the state, like ISCE's product)."""
    grid = meta.grid
    return {
        "swath": meta.swath,
        "output": out,
        "mission": meta.mission,
        "bursts": [
            {"number": i + 1, "sensing_start": b.sensing_start, "sensing_stop": b.sensing_stop,
             "burst_start": b.burst_start, "first_valid_line": b.first_valid_line,
             "num_valid_lines": b.num_valid_lines, "first_valid_sample": b.first_valid_sample,
             "num_valid_samples": b.num_valid_samples}
            for i, b in enumerate(meta.bursts)
        ],  # fmt: skip
        "t_start": secs(meta.bursts[0].sensing_start),
        "t_stop": secs(meta.bursts[-1].sensing_stop),
        "near_range": meta.starting_range,
        "far_range": meta.starting_range + (meta.samples - 1) * meta.range_pixel_size,
        "azimuth_time_interval": meta.azimuth_time_interval,
        "range_pixel_size": meta.range_pixel_size,
        "wavelength": meta.wavelength,
        "time": grid["time"].tolist(),
        "tau": grid["tau"].tolist(),
        "lat": grid["lat"].tolist(),
        "lon": grid["lon"].tolist(),
        "inc": grid["inc"].tolist(),
        "bbox": (float(np.min(grid["lat"])), float(np.max(grid["lat"])), float(np.min(grid["lon"])),
                 float(np.max(grid["lon"]))),  # fmt: skip
        "meta": copy.copy(meta),
    }


# --- the TOPS swath product (<output>/IW<n>.xml) ------------------------------------------------


def _p(indent: int, name: str, value: Any, doc: str | None = None) -> list[str]:
    pad = " " * indent
    out = [f'{pad}<property name="{name}">', f"{pad}    <value>{value}</value>"]
    if doc:
        out.append(f"{pad}    <doc>{doc}</doc>")
    return [*out, f"{pad}</property>"]


def _poly(indent: int, name: str, args: str, doc: str, mean: float) -> list[str]:
    pad = " " * indent
    lines = [f'{pad}<component name="{name}">', f"{pad}    <factorymodule>isceobj.Util.PolyFactory</factorymodule>",
             f"{pad}    <factoryname>createPoly</factoryname>", f"{pad}    <args>{args}</args>",
             f"{pad}    <doc>{doc}</doc>"]  # fmt: skip
    lines += _p(indent + 4, "coeffs", [0.0])
    lines += _p(indent + 4, "family", "poly1d", "Instance family name")
    lines += _p(indent + 4, "length", 0, "Length of the image associated with the polynomial")
    lines += _p(indent + 4, "mean", mean)
    lines += _p(indent + 4, "name", "poly1d_name", "Instance name")
    lines += _p(indent + 4, "norm", 149896229.0)
    lines += _p(indent + 4, "order", 0)
    lines += _p(indent + 4, "width", 0, "Width of the image associated with the polynomial")
    return [*lines, f"{pad}</component>"]


_SEQ_PROPS = (("_factorname", "default", "Factory Name used in the Trait Sequence"),
              ("_factory", True, "Flag - Factory/Parameter"),
              ("_mandatory", False, "Mandatory Field of the module used in Trait Sequence"),
              ("_private", True, "Private Field of the module used in Trait Sequence"))  # fmt: skip


def _orbit(pad: int, meta: Any) -> list[str]:
    """The burst's orbit component: every state vector the reader kept."""
    sp = " " * pad
    vectors = meta.state_vectors
    lines = [f'{sp}<component name="orbit">', f"{sp}    <factorymodule>isceobj.Orbit.Orbit</factorymodule>",
             f"{sp}    <factoryname>createOrbit</factoryname>", f"{sp}    <doc>Orbit information</doc>"]  # fmt: skip
    lines += _p(pad + 4, "family", "orbit", "Instance family name")
    lines += _p(pad + 4, "max_time", vectors[-1][0] if vectors else "")
    lines += _p(pad + 4, "min_time", vectors[0][0] if vectors else "")
    lines += _p(pad + 4, "name", "orbit_name", "Instance name")
    lines += _p(pad + 4, "orbit_source", meta.orbit_source, "Orbit source")
    inner = " " * (pad + 4)
    lines += [f'{inner}<component name="state_vectors">',
              f"{inner}    <factorymodule>iscesys.Component</factorymodule>",
              f"{inner}    <factoryname>createTraitSeq</factoryname>",
              f"{inner}    <args>('statevector',)</args>", f"{inner}    <doc>Testing Trait Sequence</doc>"]  # fmt: skip
    for name, value, doc in (*_SEQ_PROPS[:3], ("_modulename", "StateVector", "Module name used in Trait Sequence"),
                             _SEQ_PROPS[3]):  # fmt: skip
        lines += _p(pad + 8, name, value, doc)
    lines += _p(pad + 8, "family", "TraitSeq", "Instance family name")
    names = [f"statevector{i + 1}" for i in range(len(vectors))]
    lines += _p(pad + 8, "name", names, "Holds the sequence of names")
    sv = " " * (pad + 8)
    for i in sorted(range(len(vectors)), key=lambda k: names[k]):
        stamp, position, velocity = vectors[i]
        lines += [f'{sv}<component name="{names[i]}">', f"{sv}    <factorymodule>isceobj.Orbit.Orbit</factorymodule>",
                  f"{sv}    <factoryname>StateVector</factoryname>"]  # fmt: skip
        lines += _p(pad + 12, "family", "_family", "Instance family name")
        lines += _p(pad + 12, "name", "_family_name", "Instance name")
        lines += _p(pad + 12, "position", position)
        lines += _p(pad + 12, "time", stamp)
        lines += _p(pad + 12, "velocity", velocity)
        lines += [f"{sv}</component>"]
    return [*lines, f"{inner}</component>", f"{sp}</component>"]


def _product_xml(record: dict[str, Any], out: str) -> str:
    return _render_product(record["meta"], record["bursts"], out)


def _write_product(path: Path, meta: Any, out: str) -> None:
    bursts = [{"number": i + 1, "sensing_start": b.sensing_start, "sensing_stop": b.sensing_stop,
               "burst_start": b.burst_start, "first_valid_line": b.first_valid_line,
               "num_valid_lines": b.num_valid_lines, "first_valid_sample": b.first_valid_sample,
               "num_valid_samples": b.num_valid_samples} for i, b in enumerate(meta.bursts)]  # fmt: skip
    path.write_text(_render_product(meta, bursts, out))


def _render_product(meta: Any, bursts: list[dict[str, Any]], out: str) -> str:
    """ProductManager.dumpProduct of a TOPSSwathSLCProduct (the structure of a real IW<n>.xml)."""
    track = (meta.orbit_number - 73) % 175 + 1 if meta.mission == "S1A" else (meta.orbit_number - 27) % 175 + 1
    lines = ["<productmanager_name>"]
    lines += _p(4, "family", "productmanager", "Instance family name")
    lines += ['    <component name="instance">',
              "        <factorymodule>isceobj.Sensor.TOPS.TOPSSwathSLCProduct</factorymodule>",
              "        <factoryname>TOPSSwathSLCProduct</factoryname>"]  # fmt: skip
    lines += _p(8, "ascendingnodetime", meta.ascending_node, "Ascending node time corresponding to the acquisition")
    lines += ['        <component name="bursts">', "            <factorymodule>iscesys.Component</factorymodule>",
              "            <factoryname>createTraitSeq</factoryname>", "            <args>('burst',)</args>",
              "            <doc>Trait sequence of burst SLCs</doc>"]  # fmt: skip
    for name, value, doc in (("_factorname", "default", "Factory Name used in the Trait Sequence"),
                             ("_factory", True, "Flag - Factory/Parameter"),
                             ("_mandatory", False, "Mandatory Field of the module used in Trait Sequence"),
                             ("_modulename", "BurstSLC", "Module name used in Trait Sequence"),
                             ("_private", True, "Private Field of the module used in Trait Sequence")):  # fmt: skip
        lines += _p(12, name, value, doc)
    width, length = meta.samples, meta.lines
    for i, burst in enumerate(bursts):
        start = burst["sensing_start"]
        stop = burst["sensing_stop"]
        b_start = burst["burst_start"]
        b_stop = b_start + dt.timedelta(seconds=(length - 1) / meta.prf)
        pad = 16
        lines += [f'            <component name="burst{i + 1}">',
                  "                <factorymodule>isceobj.Sensor.TOPS.BurstSLC</factorymodule>",
                  "                <factoryname>BurstSLC</factoryname>"]  # fmt: skip
        lines += _poly(pad, "azimuthfmrate", "('1', 'd')", "Azimuth FM rate polynomial", meta.starting_range)
        values = [
            ("azimuthprocessingbandwidth", meta.processing.get("azimuthprocessingbandwidth", 0.0)),
            ("azimuthsteeringrate", meta.steering_rate),
            ("azimuthtimeinterval", meta.azimuth_time_interval),
            ("azimuthwindowcoefficient", meta.processing.get("azimuthwindowcoefficient", 0.0)),
            ("azimuthwindowtype", meta.processing.get("azimuthwindowtype", "")),
            ("burstnumber", i + 1), ("burststartutc", b_start), ("burststoputc", b_stop),
        ]
        for name, value in values:
            lines += _p(pad, name, value)
        lines += _poly(pad, "doppler", "('1d',)", "Doppler polynomial", meta.starting_range)
        for name, value in (("family", "burstslc"), ("firstvalidline", burst["first_valid_line"]),
                            ("firstvalidsample", burst["first_valid_sample"]), ("framenumber", 1)):  # fmt: skip
            lines += _p(pad, name, value)
        lines += [f'{" " * pad}<component name="image">',
                  f'{" " * pad}    <factorymodule>isceobj.Image</factorymodule>',
                  f'{" " * pad}    <factoryname>createSlcImage</factoryname>',
                  f'{" " * pad}    <doc>Image on disk</doc>']  # fmt: skip
        for name, value in (("access_mode", "read"), ("byte_order", "l")):
            lines += _p(pad + 4, name, value)
        for cname, size in (("coordinate1", width), ("coordinate2", length)):
            lines += [f'{" " * (pad + 4)}<component name="{cname}">']
            for k, v in (("delta", 1), ("endingvalue", size), ("family", "imagecoordinate"),
                         ("name", "imagecoordinate_name"), ("size", size), ("startingvalue", 0)):  # fmt: skip
                lines += _p(pad + 8, k, v)
            lines += [f'{" " * (pad + 4)}</component>']
        for name, value in (("data_type", "cfloat"), ("description", "['Single look complex image.']"),
                            ("family", "slcimage"), ("file_name", f"{out}/burst_{i + 1:02d}.slc"),
                            ("image_type", "slc"), ("length", length), ("name", "slcimage_name"),
                            ("number_bands", 1), ("scheme", "BIP"), ("width", width),
                            ("xmax", width), ("xmin", 0)):  # fmt: skip
            lines += _p(pad + 4, name, value)
        lines += [f'{" " * pad}</component>']
        for name, value in (("name", "burstslc_name"), ("numberoflines", length),
                            ("numberofsamples", width), ("numberofvalidlines", burst["num_valid_lines"]),
                            ("numberofvalidsamples", burst["num_valid_samples"])):  # fmt: skip
            lines += _p(pad, name, value)
        lines += _orbit(pad, meta)
        for name, value in (
            ("orbitnumber", meta.orbit_number), ("passdirection", meta.pass_direction),
            ("polarization", meta.polarization), ("pulserepetitionfrequency", meta.prf),
            ("radarwavelength", C / meta.radar_frequency), ("rangepixelsize", meta.range_pixel_size),
            ("rangeprocessingbandwidth", meta.processing.get("rangeprocessingbandwidth", 0.0)),
            ("rangewindowcoefficient", meta.processing.get("rangewindowcoefficient", 0.0)),
            ("rangewindowtype", meta.processing.get("rangewindowtype", "")),
            ("sensingstart", start), ("sensingstop", stop), ("startingrange", meta.starting_range),
            ("swathnumber", meta.swath), ("terrainheight", meta.terrain_height), ("tracknumber", track),
        ):
            lines += _p(pad, name, value)
        lines += ["            </component>"]
    lines += _p(12, "family", "TraitSeq", "Instance family name")
    lines += _p(12, "name", [f"burst{i + 1}" for i in range(len(bursts))], "Holds the sequence of names")
    lines += ["        </component>"]
    for name, value in (("family", "topsswathslc"), ("imagingmode", "TOPS"), ("mission", meta.mission),
                        ("name", "topsswathslc_name"), ("numberofbursts", len(bursts)),
                        ("processingfacility", meta.facility),
                        ("processingsoftwareversion", meta.ipf), ("processingsystem", "Sentinel-1 IPF"),
                        ("spacecraftname", "Sentinel-1")):  # fmt: skip
        lines += _p(8, name, value)
    lines += ["    </component>"]
    lines += _p(4, "name", "productmanager_name", "Instance name")
    return "\n".join([*lines, "</productmanager_name>"]) + "\n"


__all__ = ["EPOCH", "Run", "STEPS"]
