"""Not enough disk: the workflow stops before the downloads, or before a pair's topsApp run, with
a message that gives the numbers. The workflow tests raise the requirement above the real free
space (download.disk_margin_gb, isce.min_free_gb); only the unit tests fake the free space."""

from __future__ import annotations

import re
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from dinsar.disk import GB, DiskSpaceError, free_bytes
from dinsar.isce_run import check_pair_disk
from harness.pipeline import serve_window, user_setup
from harness.records import pair_record
from workflow_runner import executed_rules, output_of, snakemake, write_config

START, END = "2016-10-07", "2016-10-31"  # 2 dates, 1 pair
PAIR = "20161007_20161031"
HUGE_GB = 1e6  # 1 PB: more than any test machine has free
NUMBER = r"\d+(\.\d+)? [kMGT]?B"


@pytest.fixture
def user(tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle, shared_dir):
    services = serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                            dem_tiles=dem_tiles, https_server=https_server, shared_dir=shared_dir)  # fmt: skip

    def make(**extra):
        return user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                          orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle,
                          **extra)  # fmt: skip

    return make


def test_downloads_stop_before_the_first_byte_with_the_numbers(tmp_path, user, earthdata):
    setup = user(download={"disk_margin_gb": HUGE_GB})
    slc = Path(setup.config["cache"]["slc"])
    result = snakemake(tmp_path, write_config(tmp_path, setup.config), "stage", "--cores", "2",
                       env=setup.env)  # fmt: skip
    text = output_of(result)
    assert result.returncode != 0
    assert re.search(
        rf"error in rule preflight: not enough disk space in {re.escape(str(slc))} for 2 of 2 SLC "
        rf"file\(s\): {NUMBER} still to download \+ 1000\.0 TB margin \(download\.disk_margin_gb\) "
        rf"= {NUMBER} needed, {NUMBER} free; free some space, point cache\.slc at a larger disk, "
        r"or lower download\.disk_margin_gb",
        text,
    ), text[-3000:]
    assert "download_slc" not in executed_rules(result)
    assert earthdata.product_requests() == []  # not even the login probe
    assert not list(slc.glob("*.zip")) and not list(slc.glob("*.part"))


def test_a_pair_stops_before_topsapp_with_the_numbers(tmp_path, user):
    setup = user(isce={"threads": 1, "min_free_gb": HUGE_GB})
    work = setup.workspace / "work" / PAIR
    target = work / "PICKLE" / "verifyDEM"
    result = snakemake(tmp_path, write_config(tmp_path, setup.config), str(target), "--cores",
                       "2", env=setup.env)  # fmt: skip
    text = output_of(result)
    assert result.returncode != 0
    assert re.search(
        rf"error in rule isce_preprocess: not enough disk space in {re.escape(str(work))} for the "
        rf"ISCE intermediates of pair {PAIR} \(isce\.min_free_gb: 1000000\.0\): 1000\.0 TB "
        rf"needed, {NUMBER} free; free some space, put the workspace on a larger disk, or set "
        r"isce\.min_free_gb",
        text,
    ), text[-3000:]
    # staging and topsApp.xml ran; topsApp itself never started (the log would hold its command)
    assert {"download_slc", "topsapp_xml", "isce_preprocess"} <= set(executed_rules(result))
    log = (setup.workspace / "logs" / "isce_preprocess" / f"{PAIR}.log").read_text()
    assert "not enough disk space" in log and "$ " not in log and "Running step" not in log
    assert not (work / "PICKLE").exists()


# --- unit: the estimate (a fake free space) ----------------------------------------------------

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def free_gb(monkeypatch):
    def set_free(gb: float) -> None:
        monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(0, 0, int(gb * GB)))

    return set_free


def test_auto_needs_two_gb_per_burst(tmp_path, free_gb):
    info = pair_record(pair=PAIR, bursts=3)
    free_gb(6.5)
    assert check_pair_disk(tmp_path, info, "auto") == int(6.5 * GB)
    free_gb(5.0)
    with pytest.raises(DiskSpaceError) as error:
        check_pair_disk(tmp_path, info, "auto")
    assert (
        f"for the ISCE intermediates of pair {PAIR} (3 burst(s) x 2.0 GB, isce.min_free_gb: "
        "auto): 6.0 GB needed, 5.0 GB free;" in str(error.value)
    )


def test_a_number_overrides_the_estimate_and_zero_turns_the_check_off(tmp_path, free_gb):
    info = pair_record(pair=PAIR, bursts=40)  # auto would want 80 GB
    free_gb(12)
    assert check_pair_disk(tmp_path, info, 10) == 12 * GB
    with pytest.raises(DiskSpaceError, match=r"\(isce\.min_free_gb: 13\): 13\.0 GB needed"):
        check_pair_disk(tmp_path, info, 13)
    free_gb(0.001)
    assert check_pair_disk(tmp_path, info, 0) == int(0.001 * GB)


def test_the_real_free_space_is_what_the_check_reads(tmp_path):
    real = free_bytes(tmp_path)
    assert check_pair_disk(tmp_path, pair_record(bursts=1), real / GB / 2) == pytest.approx(real, rel=0.01)
