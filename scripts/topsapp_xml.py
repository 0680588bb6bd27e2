"""Rules `topsapp_xml` and `geometry_xml`: the pair's topsApp.xml (validated) and our record of
the pair; for geometry_xml the reference date as its own secondary (dinsar.geometry).

Reads the SLC zips' annotations to choose the swaths whose bursts cover the ROI, picks each
date's orbit file from its manifest, and refuses, before anything runs, every topsApp.xml that
ISCE would misread (dinsar.isce_xml.validate_topsapp_xml).
"""

import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_text
from dinsar.config import validate_config
from dinsar.dem import track_grid_for
from dinsar.eof import EofError, read_eof
from dinsar.errors import DinsarError
from dinsar.integrity import check_unchanged
from dinsar.isce_xml import (
    Sensor,
    TopsAppConfig,
    geocode_bbox_snwe,
    render_topsapp_xml,
    snwe,
    validate_topsapp_xml,
)
from dinsar.records import AuxCalManifest, DemManifest, OrbitManifest, PairRecord
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
    record = OrbitManifest.read(manifest)
    entry = record.for_platform(platform)
    if entry is None:
        raise DinsarError(
            f"{manifest} lists no {platform} orbit for {record.date}; rerun the orbit step"
        )
    path = entry.file
    try:
        content = read_eof(path)
    except EofError as exc:
        raise DinsarError(f"{exc}; delete {manifest} and rerun the orbit step") from None
    for safe in safes:
        gaps = content.gaps(safe.start, safe.stop, margin, platform)
        if gaps:
            raise DinsarError(
                f"orbit {path} does not cover {safe.granule} (+-{margin:g} s: {'; '.join(gaps)}); "
                "rerun the orbit step (delete the orbit manifest)"
            )
    return path


def aux_directory(manifests, date: str) -> str | None:
    for manifest in manifests:
        record = AuxCalManifest.read(manifest)
        if record.date == date:
            return record.directory
    return None


def main(snakemake):
    params = snakemake.params
    # a pair, or (rule geometry_xml) a reference date paired with itself for its geometry job
    wildcards = snakemake.wildcards
    label = getattr(wildcards, "pair", None) or f"geometry_{wildcards.date}"
    config = validate_config(snakemake.config)
    isce = config.isce
    pol = params.polarization.lower()
    roi = parse_roi(params.roi)
    workdir = Path(snakemake.output.xml).parent
    workdir.mkdir(parents=True, exist_ok=True)
    for zip_path in [*snakemake.input.ref_zips, *snakemake.input.sec_zips]:
        # a zip changed in the cache since its verified download is refused before ISCE
        check_unchanged(Path(zip_path), f"SLC {zip_path}")
    ref = [read_safe(z, pol) for z in snakemake.input.ref_zips]
    sec = [read_safe(z, pol) for z in snakemake.input.sec_zips]
    if isce.swaths == "auto":
        swaths = select_swaths(ref, sec, roi)
    else:
        swaths = sorted(isce.swaths)
    counts = common_bursts(ref, sec, roi.bounds)  # as topsApp's crop keeps them
    missing = [s for s in swaths if s not in roi_bursts(ref, roi)]
    if missing:
        raise DinsarError(
            f"isce.swaths lists {missing} but no burst of those swaths covers the ROI; "
            f"use 'auto' or {sorted(counts)}"
        )
    chosen = {s: counts[s] for s in swaths if s in counts}
    lines = merged_lines(ref, chosen, isce.azimuth_looks)
    if lines < ICU_MIN_LINES:
        raise DinsarError(
            f"pair {label}: topsApp keeps {sum(chosen.values())} burst(s) for "
            f"the ROI, about {lines} lines at {isce.azimuth_looks} azimuth looks; ISCE's "
            f"phase-sigma step needs at least {ICU_MIN_LINES} and would write an empty "
            "phsig.cor. Enlarge the ROI along the track (a second burst), or lower "
            f"isce.azimuth_looks to {max(1, lines * isce.azimuth_looks // ICU_MIN_LINES)}"
        )
    esd = isce.esd
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
    dem = DemManifest.read(snakemake.input.dem)
    grid = track_grid_for(dem, config)
    bounds = roi.bounds
    cfg = TopsAppConfig(
        reference=sensors["reference"],
        secondary=sensors["secondary"],
        swaths=tuple(swaths),
        roi_snwe=snwe(bounds),
        # the track grid's samples exactly (every pair of the track on one grid)
        geocode_bbox_snwe=geocode_bbox_snwe(grid),
        dem=dem.dem,
        geocode_dem=dem.geocode_dem,
        isce=isce,
        polarization=pol,
        geocode_list=tuple(params.geocode),
        overrides={} if esd == isce.esd else {"do ESD": esd},
    )
    text = render_topsapp_xml(cfg)
    validate_topsapp_xml(text, base_dir=workdir, where=snakemake.output.xml)
    record = PairRecord(
        pair=label,
        reference=pair["reference"],
        secondary=pair["secondary"],
        swaths=swaths,
        bursts_per_swath={str(s): counts.get(s, 0) for s in swaths},
        bursts=sum(counts.get(s, 0) for s in swaths),
        wavelength=ref[0].swaths[swaths[0]].wavelength,
        ipf=sorted({s.ipf or "" for s in [*ref, *sec]}),
        range_looks=isce.range_looks,
        azimuth_looks=isce.azimuth_looks,
        unwrap=isce.unwrap,
        unwrapper=isce.unwrapper,
        esd=esd,
        geocode=list(params.geocode),
        output_dirs={"reference": "reference", "secondary": "secondary"},
    )
    record.write(snakemake.output.info)
    write_text(snakemake.output.xml, text)
    log.info("%s: swaths %s, %d bursts over the ROI; geocoded onto the track grid %d x %d, "
             "bounds %s", workdir, swaths, record.bursts, grid.width, grid.length, grid.bounds())


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "topsapp_xml", configfiles=["config/roi.yaml"], pair="20251220_20260101"
    )
run(main, snakemake)
