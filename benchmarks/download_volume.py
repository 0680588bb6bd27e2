"""Bytes downloaded per date in burst mode and in SLC mode, from real record sizes.

Sizes come from real records only (../shared/fixtures, see SOURCES.md):

* a burst's own bytes: the ``bytes`` of the 166 real SLC-BURST records of 174_372326_IW3
  (its pixels: samples x lines x 4);
* what burst mode fetches beyond them: per burst the TIFF header (the largest header of the
  real ESA measurement TIFFs in the xarray-sentinel fixture: the byte offset of the first
  strip), and per slice and date the metadata XML, fetched once for all its bursts (the
  extractor returns the slice's annotation of every swath for the polarization: product,
  calibration and noise annotation, and the manifest; their sizes are those of the real
  burst-extractor SAFE in the hyp3-isce2 fixture);
* a whole slice: the ``bytes`` of the 176 real IW SLC records of path 13 (21 single-pol,
  155 dual-pol).

For one-, three- and nine-burst areas it prints bytes per date in burst mode, the bursts' own
bytes, the overhead (target: within 5 %), and the whole-SLC bytes when the area lies in one
slice and when it spans two, for single- and dual-polarization slices.

    .venv/bin/python benchmarks/download_volume.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixture_scenes import BURST_STACK_FILE, STACK_FILE, stack_records  # noqa: E402

BURSTS = (1, 3, 9)
MEASUREMENT_ZIP = "xarray-sentinel/S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip"
EXTRACTOR_SAFE = "hyp3-isce2/S1B_IW_SLC__1SSV_20180628T151555_20180628T151555_011575_015476_33AD.SAFE"


def tiff_header_bytes(fixtures: Path) -> int:
    import tifffile

    largest = 0
    with zipfile.ZipFile(fixtures / MEASUREMENT_ZIP) as archive:
        for name in archive.namelist():
            if name.endswith(".tiff"):
                page = tifffile.TiffFile(io.BytesIO(archive.read(name))).pages[0]
                largest = max(largest, min(page.dataoffsets))
    return largest


def metadata_xml_bytes(fixtures: Path) -> int:
    """The extractor's XML of a slice: every swath's annotation of one polarization."""
    safe = fixtures / EXTRACTOR_SAFE
    products = [p.stat().st_size for p in (safe / "annotation").glob("*.xml")]
    calibration = (safe / "annotation" / "calibration").glob("calibration-*.xml")
    noise = (safe / "annotation" / "calibration").glob("noise-*.xml")
    per_swath = max(p.stat().st_size for p in calibration) + max(p.stat().st_size for p in noise)
    swaths = len(products)
    return sum(products) + swaths * per_swath + (safe / "manifest.safe").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    fixtures = args.shared / "fixtures"
    burst_sizes = [r["properties"]["bytes"] for r in stack_records(args.shared, BURST_STACK_FILE)]
    slc = {"SV": [], "DV": []}
    for record in stack_records(args.shared, STACK_FILE):
        slc[record["properties"]["sceneName"][14:16]].append(record["properties"]["bytes"])
    burst = statistics.mean(burst_sizes)
    header, xml = tiff_header_bytes(fixtures), metadata_xml_bytes(fixtures)
    rows = []
    for n in BURSTS:
        own = n * burst
        fetched = n * (burst + header) + xml  # the bursts of one slice: one XML
        row = {
            "bursts": n,
            "own_GB": own / 1e9,
            "burst_mode_GB": fetched / 1e9,
            "overhead_pct": 100 * (fetched - own) / own,
        }
        for kind in ("SV", "DV"):
            one = statistics.mean(slc[kind])
            row[f"slc_{kind}_1_slice_GB"] = one / 1e9
            row[f"slc_{kind}_2_slices_GB"] = 2 * one / 1e9
            row[f"ratio_{kind}_1"] = one / fetched
            row[f"ratio_{kind}_2"] = 2 * one / fetched
        rows.append(row)
    print(json.dumps({
        "burst_record_bytes": {"n": len(burst_sizes), "mean": burst, "min": min(burst_sizes),
                               "max": max(burst_sizes)},
        "slc_record_bytes": {k: {"n": len(v), "mean": statistics.mean(v)} for k, v in slc.items()},
        "tiff_header_bytes": header,
        "metadata_xml_bytes": xml,
    }, indent=1))  # fmt: skip
    print()
    print("| bursts | bursts' own bytes | burst mode downloads | overhead | whole SLCs, 1 slice "
          "(single / dual pol) | 2 slices | ratio, 1 slice | ratio, 2 slices |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['bursts']} | {r['own_GB']:.3f} GB | {r['burst_mode_GB']:.3f} GB "
            f"| {r['overhead_pct']:.2f} % | {r['slc_SV_1_slice_GB']:.2f} / "
            f"{r['slc_DV_1_slice_GB']:.2f} GB | {r['slc_SV_2_slices_GB']:.2f} / "
            f"{r['slc_DV_2_slices_GB']:.2f} GB | {r['ratio_SV_1']:.1f}x / {r['ratio_DV_1']:.1f}x "
            f"| {r['ratio_SV_2']:.1f}x / {r['ratio_DV_2']:.1f}x |"
        )


if __name__ == "__main__":
    main()
