"""Rule `topsapp_xml`: the pair's topsApp.xml (validated) and our record of the pair.

Reads the SLC zips' annotations to choose the swaths whose bursts cover the ROI, picks each
date's orbit file from its manifest, and refuses, before anything runs, every topsApp.xml that
ISCE would misread (dinsar.isce_xml.validate_topsapp_xml).
"""

import json
import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_json, write_text
from dinsar.errors import DinsarError
from dinsar.integrity import check_unchanged
from dinsar.isce_run import orbit_covers
from dinsar.isce_xml import (
    Sensor,
    TopsAppConfig,
    render_topsapp_xml,
    snwe,
    validate_topsapp_xml,
)
from dinsar.roi import parse_roi
from dinsar.safe import (
    ICU_MIN_LINES,
    common_bursts,
    merged_lines,
    read_safe,
    roi_bursts,
    select_swaths,
)

log = logging.getLogger("dinsar.topsapp_xml")


def orbit_file(manifest: str, platform: str, safes, margin: float) -> str:
    data = json.loads(Path(manifest).read_text())
    entries = [o for o in data.get("orbits", []) if o.get("platform") == platform]
    if not entries:
        raise DinsarError(
            f"{manifest} lists no {platform} orbit for {data.get('date')}; rerun the orbit step"
        )
    path = entries[0]["file"]
    for safe in safes:
        if not Path(path).is_file() or not orbit_covers(path, safe.start, safe.stop, margin):
            raise DinsarError(
                f"orbit {path} does not cover {safe.granule} (+-{margin:g} s); rerun the orbit "
                "step (delete the orbit manifest)"
            )
    return path


def aux_directory(manifests, date: str) -> str | None:
    for manifest in manifests:
        data = json.loads(Path(manifest).read_text())
        if data.get("date") == date:
            return data["directory"]
    return None


def main(snakemake):
    params = snakemake.params
    isce = params.isce
    pol = params.polarization.lower()
    roi = parse_roi(params.roi)
    workdir = Path(snakemake.output.xml).parent
    workdir.mkdir(parents=True, exist_ok=True)
    for zip_path in [*snakemake.input.ref_zips, *snakemake.input.sec_zips]:
        # a zip changed in the cache since its verified download is refused before ISCE
        check_unchanged(Path(zip_path), f"SLC {zip_path}")
    ref = [read_safe(z, pol) for z in snakemake.input.ref_zips]
    sec = [read_safe(z, pol) for z in snakemake.input.sec_zips]
    if isce["swaths"] == "auto":
        swaths = select_swaths(ref, sec, roi)
    else:
        swaths = sorted(isce["swaths"])
    counts = common_bursts(ref, sec, roi.bounds)  # as topsApp's crop keeps them
    missing = [s for s in swaths if s not in roi_bursts(ref, roi)]
    if missing:
        raise DinsarError(
            f"isce.swaths lists {missing} but no burst of those swaths covers the ROI; "
            f"use 'auto' or {sorted(counts)}"
        )
    chosen = {s: counts[s] for s in swaths if s in counts}
    lines = merged_lines(ref, chosen, isce["azimuth_looks"])
    if lines < ICU_MIN_LINES:
        raise DinsarError(
            f"pair {snakemake.wildcards.pair}: topsApp keeps {sum(chosen.values())} burst(s) for "
            f"the ROI, about {lines} lines at {isce['azimuth_looks']} azimuth looks; ISCE's "
            f"phase-sigma step needs at least {ICU_MIN_LINES} and would write an empty "
            "phsig.cor. Enlarge the ROI along the track (a second burst), or lower "
            f"isce.azimuth_looks to {max(1, lines * isce['azimuth_looks'] // ICU_MIN_LINES)}"
        )
    esd = isce["esd"]
    if esd and all(counts.get(s, 0) < 2 for s in swaths):
        # ISCE2 2.6.5 skips ESD for such a swath, then stops in runESD with "Coherence
        # threshold too strict. No points left" when no swath is left (seen on a real run)
        esd = False
        log.warning("ESD turned off for this pair: it needs 2 common bursts in a swath and "
                    "topsApp keeps %s for the ROI", counts)  # fmt: skip
    aux = list(getattr(snakemake.input, "aux", []))
    pair = params.pair
    sensors = {}
    for role, safes, manifest in (
        ("reference", ref, snakemake.input.ref_orbit),
        ("secondary", sec, snakemake.input.sec_orbit),
    ):
        info = pair[role]
        sensors[role] = Sensor(
            safes=tuple(str(Path(s.path).resolve()) for s in safes),
            output_dir=role,
            orbit_file=orbit_file(manifest, info["platform"], safes, params.margin_seconds),
            aux_dir=aux_directory(aux, info["date"]),
        )
    dem = json.loads(Path(snakemake.input.dem).read_text())
    bounds = roi.bounds
    cfg = TopsAppConfig(
        reference=sensors["reference"],
        secondary=sensors["secondary"],
        swaths=tuple(swaths),
        roi_snwe=snwe(bounds),
        geocode_bbox_snwe=snwe(bounds, isce["geocode_margin"]),
        dem=dem["dem"],
        geocode_dem=dem.get("geocode_dem") or dem["dem"],
        polarization=pol,
        range_looks=isce["range_looks"],
        azimuth_looks=isce["azimuth_looks"],
        filter_strength=isce["filter_strength"],
        unwrap=isce["unwrap"],
        unwrapper=isce["unwrapper"],
        esd=esd,
        esd_coherence_threshold=isce["esd_coherence_threshold"],
        ionosphere=isce["ionosphere"],
        use_virtual_files=isce["use_virtual_files"],
        geocode_list=tuple(params.geocode),
    )
    text = render_topsapp_xml(cfg)
    validate_topsapp_xml(text, base_dir=workdir, where=snakemake.output.xml)
    record = {
        "pair": snakemake.wildcards.pair,
        "reference": pair["reference"],
        "secondary": pair["secondary"],
        "swaths": swaths,
        "bursts_per_swath": {str(s): counts[s] for s in swaths},
        "bursts": sum(counts[s] for s in swaths),
        "wavelength": ref[0].swaths[swaths[0]].wavelength,
        "ipf": sorted({s.ipf or "" for s in [*ref, *sec]}),
        "range_looks": isce["range_looks"],
        "azimuth_looks": isce["azimuth_looks"],
        "unwrap": isce["unwrap"],
        "unwrapper": isce["unwrapper"],
        "esd": esd,
        "geocode": list(params.geocode),
        "output_dirs": {"reference": "reference", "secondary": "secondary"},
    }
    write_json(snakemake.output.info, record)
    write_text(snakemake.output.xml, text)
    log.info("%s: swaths %s, %d bursts over the ROI", workdir, swaths, record["bursts"])


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "topsapp_xml", configfiles=["config/roi.yaml"], pair="20251220_20260101"
    )
run(main, snakemake)
