"""Running topsApp in step groups: commands, resume state, checks, resources and disk policy.

Each group is one Snakemake rule and one ``topsApp.py topsApp.xml --start=X --end=Y`` call in the
pair's work directory (ISCE always reads ./topsApp.xml, so every pair has its own directory).
ISCE keeps its state between calls in ``PICKLE/<step>`` + ``PICKLE/<step>.xml``; a group can only
start when the previous group's last step left both. Steps and files: reference/isce2/
topsapp_steps.json and products.json.

No snakemake import; the ISCE environment only needs the standard library and numpy for this.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DinsarError
from .isce_image import IsceImageError, read_image
from .records import PairRecord, RecordError
from .topsapp import TopsApp

log = logging.getLogger(__name__)

# topsApp's step list (TopsInSAR._steps); a test keeps it equal to topsapp_steps.json
STEP_ORDER: tuple[str, ...] = (
    "startup", "preprocess", "computeBaselines", "verifyDEM", "topo", "subsetoverlaps",
    "coarseoffsets", "coarseresamp", "overlapifg", "prepesd", "esd", "rangecoreg", "fineoffsets",
    "fineresamp", "ion", "burstifg", "mergebursts", "filter", "unwrap", "unwrap2stage", "geocode",
    "denseoffsets", "filteroffsets", "geocodeoffsets",
)  # fmt: skip


@dataclass(frozen=True)
class StepGroup:
    """One Snakemake rule (``isce_<name>``): topsApp steps first..last in one call."""

    name: str
    first: str
    last: str
    threaded: bool  # OpenMP: it gets isce.threads; otherwise one thread

    @property
    def rule(self) -> str:
        return f"isce_{self.name}"

    @property
    def steps(self) -> tuple[str, ...]:
        return STEP_ORDER[STEP_ORDER.index(self.first) : STEP_ORDER.index(self.last) + 1]

    @property
    def previous_step(self) -> str | None:
        index = STEP_ORDER.index(self.first)
        return STEP_ORDER[index - 1] if index else None


# The one step table: rules/isce.smk makes a rule of each row, in this order (later rows get
# higher priority), and benchmarks/cluster_model.py models the same jobs.
GROUPS: tuple[StepGroup, ...] = (
    StepGroup("preprocess", "startup", "verifyDEM", threaded=False),
    StepGroup("topo", "topo", "topo", threaded=True),
    StepGroup("coregistration", "subsetoverlaps", "fineresamp", threaded=True),
    StepGroup("interferogram", "ion", "mergebursts", threaded=True),
    StepGroup("filter", "filter", "filter", threaded=False),
    StepGroup("unwrap", "unwrap", "unwrap2stage", threaded=False),  # SNAPHU is serial
    StepGroup("geocode", "geocode", "geocode", threaded=True),
)
GROUP_BY_NAME = {g.name: g for g in GROUPS}
PAIR_INFO = "dinsar_pair.json"  # our record of the pair next to ISCE's files
CLEANUP_RECORD = "cleanup.json"


class IsceRunError(DinsarError):
    """A topsApp step cannot run, failed, or did not leave what it should."""


def group(name: str | StepGroup) -> StepGroup:
    """A row of GROUPS by name (a StepGroup outside the table, e.g. the geometry job, as is)."""
    if isinstance(name, StepGroup):
        return name
    try:
        return GROUP_BY_NAME[name]
    except KeyError:
        raise IsceRunError(f"unknown step group {name!r}; one of {', '.join(GROUP_BY_NAME)}") from None


def pickle_files(step: str) -> tuple[str, str]:
    """ISCE's state after a step (renderer 'xml'): the pickle and its XML rendering."""
    return f"PICKLE/{step}", f"PICKLE/{step}.xml"


# --- what each group writes --------------------------------------------------------------------

# Multilooked products in merged/ that each group writes (binary + .xml + .vrt).
_MERGED_BY_GROUP = {
    "interferogram": ("merged/topophase.flat", "merged/topophase.cor", "merged/los.rdr"),
    "filter": ("merged/filt_topophase.flat", "merged/phsig.cor"),
}


def radar_products(group_name: str, *, unwrap: bool, unwrapper: str) -> list[str]:
    """Multilooked radar-geometry files in merged/ written by a group (files ISCE really writes).

    The swath-dependent files (``reference/IW<n>.xml``, ``geom_reference/IW<n>/...``) are not listed:
    the swaths are only known once the SLCs are read, so they are checked after the step instead.
    """
    if group_name == "unwrap":
        if not unwrap:
            return []
        conncomp = (
            "merged/filt_topophase.conncomp"
            if unwrapper == "icu"
            else "merged/filt_topophase.unw.conncomp"
        )
        return ["merged/filt_topophase.unw", conncomp]
    return list(_MERGED_BY_GROUP.get(group_name, ()))


def producible(*, unwrap: bool, unwrapper: str, ionosphere: bool, looks: tuple[int, int]) -> set[str]:
    """Every merged/ file topsApp writes with these settings (candidates for geocoding)."""
    names = {p for g in ("interferogram", "filter", "unwrap") for p in
             radar_products(g, unwrap=unwrap, unwrapper=unwrapper)}  # fmt: skip
    full = "" if looks == (1, 1) else ".full"
    names |= {f"merged/{n}.rdr{full}" for n in ("lat", "lon", "z")}
    if full:
        names |= {"merged/los.rdr.full", "merged/topophase.flat.full", "merged/topophase.cor.full"}
    if ionosphere:
        names.add("merged/topophase.ion")
    return names


def geocode_products(
    entries: Sequence[str],
    *,
    unwrap: bool,
    unwrapper: str,
    ionosphere: bool,
    looks: tuple[int, int],
    strict: bool,
) -> list[str]:
    """The geocode list entries topsApp will really geocode (it skips missing files silently).

    strict: raise for an entry that will not exist (the user asked for it); otherwise drop it
    with a log line (the default list lists unwrapped products even when unwrapping is off).
    """
    possible = producible(unwrap=unwrap, unwrapper=unwrapper, ionosphere=ionosphere, looks=looks)
    kept: list[str] = []
    for entry in entries:
        if entry in possible:
            if entry not in kept:
                kept.append(entry)
            continue
        reason = _why_not(entry, unwrap=unwrap, unwrapper=unwrapper, ionosphere=ionosphere)
        if strict:
            raise IsceRunError(
                f"isce.geocode_list: {entry!r} {reason}, and topsApp would silently skip it; "
                "remove it from isce.geocode_list or change the setting"
            )
        log.info("not geocoding %s: %s", entry, reason)
    if not kept:
        raise IsceRunError("isce.geocode_list: nothing to geocode; list e.g. 'merged/filt_topophase.unw'")
    return kept


def _why_not(entry: str, *, unwrap: bool, unwrapper: str, ionosphere: bool) -> str:
    if "filt_topophase.unw" in entry or "conncomp" in entry:
        if not unwrap:
            return "is only written with isce.unwrap: true"
        return f"is not what unwrapper {unwrapper} writes"
    if "topophase.ion" in entry and not ionosphere:
        return "is only written with isce.ionosphere: true"
    if re.fullmatch(r"merged/(lat|lon|z)\.rdr", entry):
        return "is only written at 1x1 looks (topsApp keeps merged/{lat,lon,z}.rdr.full)"
    return "is not a file topsApp writes"


def group_outputs(group_name: str, *, unwrap: bool, unwrapper: str,
                  geocode: Sequence[str] = ()) -> dict[str, list[str]]:  # fmt: skip
    """Files (relative to the work dir) a group must leave, split by how long they live.

    state: PICKLE/<last step> (needed to resume the next group; an intermediate under keep:
    products). metadata: PICKLE/<last step>.xml (kept). products: multilooked radar files
    (intermediate) or geocoded files (kept).
    """
    g = group(group_name)
    state, metadata = pickle_files(g.last)
    if group_name == "geocode":
        geo = []
        for entry in geocode:
            geo += [f"{entry}.geo", f"{entry}.geo.xml", f"{entry}.geo.vrt"]
        geo += ["merged/dem.crop", "merged/dem.crop.xml", "merged/dem.crop.vrt"]
        return {"state": [], "metadata": [state, metadata], "products": geo}
    return {
        "state": [state],
        "metadata": [metadata],
        "products": radar_products(group_name, unwrap=unwrap, unwrapper=unwrapper),
    }


# --- what the rules need of a pair (used by rules/isce.smk; paths come from its callables) -----

def pair_inputs(reference: Any, secondary: Any, *, slc: str, orbits: str, dem: str,
                aux_cal: str) -> dict[str, Any]:  # fmt: skip
    """A pair's staged inputs, at the paths of the rules that make them (their output patterns,
    with ``{granule}`` or ``{safe}``, ``{date}`` and ``{track}``).

    ``slc`` names each date's SAFE zips (``Acquisition.safe_names``): the downloaded slices, or
    in burst mode the SAFE assembled from the date's bursts; topsApp gets them the same way.

    reference/secondary: the dates' Acquisitions (scenes in slice order). AUX_CAL only for
    dates whose scenes need it (dinsar.aux_cal.needs_aux_cal, the one rule for it).
    """
    from .aux_cal import needs_aux_cal

    inputs: dict[str, Any] = {
        "ref_zips": [slc.format(granule=n, safe=n) for n in reference.safe_names],
        "sec_zips": [slc.format(granule=n, safe=n) for n in secondary.safe_names],
        "ref_orbit": orbits.format(date=reference.date),
        "sec_orbit": orbits.format(date=secondary.date),
        "dem": dem.format(track=reference.track),
    }
    aux = [aux_cal.format(date=a.date) for a in (reference, secondary)
           if any(needs_aux_cal(s.ipf) for s in a.scenes)]  # fmt: skip
    if aux:
        inputs["aux"] = aux
    return inputs


def pair_params(reference: Any, secondary: Any) -> dict[str, Any]:
    return {
        role: {"date": a.date, "platform": a.platform, "track": a.track, "granules": a.granules}
        for role, a in (("reference", reference), ("secondary", secondary))
    }


def pair_bursts(info_path: str | Path, fallback: int) -> int:
    """Bursts a pair processes: from its dinsar_pair.json once written, else the estimate."""
    try:
        return PairRecord.read(info_path).bursts
    except RecordError:
        return fallback


# --- the command --------------------------------------------------------------------------------


def step_command(base: Sequence[str], group_name: str | StepGroup) -> list[str]:
    """``<topsApp> topsApp.xml --start=X --end=Y`` as an argument list (the '=' is required)."""
    g = group(group_name)
    return [*base, "topsApp.xml", f"--start={g.first}", f"--end={g.last}"]


def check_resume_state(workdir: str | Path, group_name: str) -> None:
    """The previous step's PICKLE pair must exist, or ISCE silently starts from a blank state."""
    g = group(group_name)
    previous = g.previous_step
    if previous is None:
        return
    workdir = Path(workdir)
    missing = [p for p in pickle_files(previous) if not (workdir / p).is_file()]
    if missing:
        raise IsceRunError(
            f"{workdir}: cannot start {group_name} at step {g.first}: {', '.join(missing)} is "
            f"missing (ISCE would carry on with an empty state and fail later); rerun the "
            f"earlier step groups, e.g. delete {workdir / 'PICKLE'} and run again"
        )


def run_topsapp(topsapp: TopsApp, group_name: str | StepGroup, workdir: str | Path, env: Mapping[str, str],
                log_path: str | Path | None, threads: int) -> dict[str, float]:  # fmt: skip
    """Run one step group in the pair directory; ISCE's output goes to the log (appended).

    Returns what the topsApp process and the children it waited for used: wall and CPU seconds
    and peak resident memory, measured exactly (wait4), not sampled.

    Ctrl-C (SIGINT to the terminal's process group) or SIGTERM: topsApp ignores SIGINT (it would
    write a Python traceback into the log, which Snakemake then shows), this process stops it
    with SIGTERM, notes it in the log and raises KeyboardInterrupt for the glue to say once.
    A SIGKILL of the group still reaches topsApp: it stays in this process group.
    """
    workdir = Path(workdir)
    command = step_command(topsapp.command, group_name)
    run_env = topsapp.environment(env, threads)
    log.info("running %s in %s with %d thread(s)", shlex.join(command), workdir, threads)
    sink = open(log_path, "a") if log_path else subprocess.DEVNULL  # noqa: SIM115
    started = time.monotonic()
    try:
        if log_path:
            sink.write(f"\n==== {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} $ {shlex.join(command)}\n")
            sink.flush()
        # SIGTERM is ours from before topsApp starts: held back while it starts (so none lands
        # between its start and the handler, leaving it running), delivered right after
        previous = signal.signal(signal.SIGTERM, _interrupt)
        process = None
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                process = subprocess.Popen(  # noqa: S603 - argument list, no shell, nothing from config is parsed by a shell
                    list(command), cwd=workdir, env=run_env, stdout=sink, stderr=subprocess.STDOUT,
                    preexec_fn=_child_signals,  # noqa: PLW1509 - one thread here
                )  # fmt: skip
            except OSError as exc:
                raise IsceRunError(f"could not start {command[0]} ({exc}); check isce.topsapp") from None
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            _pid, status, usage = os.wait4(process.pid, 0)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while topsApp stops
            if process is not None:
                _stop(process)
                if log_path:
                    sink.write(f"\n==== interrupted: {command[0]} stopped\n")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log_path:
            sink.close()
    record = {
        "group": group(group_name).name,
        "wall_s": round(time.monotonic() - started, 3),
        "user_s": round(usage.ru_utime, 3),
        "system_s": round(usage.ru_stime, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kB
        "threads": threads,
        "exit_code": process.returncode,
    }
    if process.returncode != 0:
        tail = _tail(log_path) if log_path else ""
        raise IsceRunError(
            f"topsApp {' '.join(command[-2:])} failed with exit code {process.returncode} in "
            f"{workdir}; see {log_path}{': ' + tail if tail else ''}"
        )
    return record


def _child_signals() -> None:
    """In topsApp's process before exec: SIGINT ignored (Python then installs no
    KeyboardInterrupt handler), SIGTERM no longer held back as it is in the parent then."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop(process: subprocess.Popen[Any], grace_s: float = 30.0) -> None:
    """End topsApp: SIGTERM, then SIGKILL if it is still there after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: str | Path | None, lines: int = 1) -> str:
    try:
        text = Path(path or "").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(t.strip() for t in text[-lines:])


# --- checks around the steps --------------------------------------------------------------------

# ISCE's folders and files in a pair directory (TopsProc defaults), apart from the output dirs
_ISCE_TREE = ("geom_reference", "coarse_offsets", "coarse_coreg", "coarse_interferogram",
              "fine_offsets", "fine_coreg", "fine_interferogram", "ESD", "ion", "merged", "PICKLE")  # fmt: skip


def fresh_start(workdir: str | Path, info: PairRecord) -> None:
    """Before preprocess: remove an earlier run's ISCE tree (other swaths, stale PICKLE state).

    preprocess reruns only when topsApp.xml or the inputs changed, and then every later group
    reruns too; leftovers (e.g. IW3 from a run with other swaths) would only mislead.
    """
    workdir = Path(workdir)
    names = [*_ISCE_TREE, *info.output_dirs.values()]
    for name in names:
        path = workdir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
    for name in ("topsProc.xml", CLEANUP_RECORD):
        (workdir / name).unlink(missing_ok=True)


def check_pair_disk(workdir: str | Path, info: PairRecord, setting: Any = "auto") -> int:
    """Before preprocess: the free space the pair's intermediates need, or stop with the numbers.

    ``setting`` is ``isce.min_free_gb``: "auto" = the pair's bursts (dinsar_pair.json, every
    swath) x 2 GB, the plan's estimate; a number of GB; 0 = no check. Returns the free bytes.
    """
    from .disk import GB, INTERMEDIATE_BYTES_PER_BURST, check_space_for, format_bytes, free_bytes

    workdir = Path(workdir)
    if setting in (None, "auto"):
        bursts = max(1, info.bursts)
        needed = bursts * INTERMEDIATE_BYTES_PER_BURST
        how = (
            f"{bursts} burst(s) x {format_bytes(INTERMEDIATE_BYTES_PER_BURST)}, "
            "isce.min_free_gb: auto"
        )
    else:
        needed = int(float(setting) * GB)
        how = f"isce.min_free_gb: {setting}"
    if needed <= 0:
        return free_bytes(workdir)
    return check_space_for(
        workdir,
        needed,
        f"the ISCE intermediates of pair {info.pair} ({how})",
        "free some space, put the workspace on a larger disk, or set isce.min_free_gb to the "
        "GB this pair really needs (0 turns the check off)",
    )


def check_after(workdir: str | Path, group_name: str, info: PairRecord) -> None:
    """What the group must have left; ISCE often only prints a message when a step failed."""
    workdir = Path(workdir)
    g = group(group_name)
    problems = [p for p in pickle_files(g.last) if not (workdir / p).is_file()]
    swaths = info.swaths
    if group_name == "preprocess":
        for role in ("reference", "secondary"):
            out = info.output_dirs[role]
            for swath in swaths:
                if not (workdir / out / f"IW{swath}.xml").is_file():
                    problems.append(
                        f"{out}/IW{swath}.xml was not written: topsApp could not extract swath "
                        f"{swath} of the {role} date (bad SAFE zip, orbit not covering the "
                        "acquisition, or no bursts in the ROI); see the log for 'Could not extract'"
                    )
    elif group_name == "topo":
        for swath in swaths:
            if not any((workdir / "geom_reference" / f"IW{swath}").glob("lat_*.rdr*")):
                problems.append(f"geom_reference/IW{swath}/lat_*.rdr missing after topo")
    elif group_name == "coregistration":
        for swath in swaths:
            if not (workdir / "fine_coreg" / f"IW{swath}.xml").is_file():
                problems.append(f"fine_coreg/IW{swath}.xml missing after fineresamp")
    outputs = group_outputs(group_name, unwrap=info.unwrap, unwrapper=info.unwrapper,
                            geocode=info.geocode)  # fmt: skip
    for rel in outputs["products"]:
        path = workdir / rel
        if not path.is_file():
            problems.append(f"{rel} was not written")
        elif not rel.endswith((".xml", ".vrt")):
            try:
                image = read_image(path.with_name(path.name + ".xml"))
            except (IsceImageError, OSError) as exc:
                problems.append(f"{rel}.xml unreadable ({exc})")
                continue
            if path.stat().st_size != image.expected_size:
                problems.append(
                    f"{rel} has {path.stat().st_size} bytes, its .xml says {image.expected_size}"
                )
    if problems:
        raise IsceRunError(
            f"{workdir}: step group {group_name} ({g.first}..{g.last}) did not finish: "
            + "; ".join(problems)
        )


def prerun_checks(workdir: str | Path, margin_s: float = 60.0) -> None:
    """Before preprocess: topsApp.xml valid, every zip readable by ISCE, orbits covering it all.

    ISCE only prints "Could not extract swath" for a bad zip or orbit and fails a step later.
    """
    from . import safe as safe_mod
    from .eof import EofError, read_eof
    from .integrity import ChangedFileError, check_unchanged
    from .isce_xml import validate_file

    workdir = Path(workdir)
    xml = validate_file(workdir / "topsApp.xml")
    problems: list[str] = []
    for role, safes in (("reference", xml.reference_safes), ("secondary", xml.secondary_safes)):
        sensor = xml.sensors.get(role, {})
        orbit = sensor.get("orbitfile")
        polarization = sensor.get("polarization") or "vv"
        for item in safes:
            path = Path(item) if Path(item).is_absolute() else workdir / item
            try:
                if path.is_file():
                    check_unchanged(path, f"SLC {path}")
                start, stop = safe_mod.scene_times(path, polarization)
            except (safe_mod.SafeError, ChangedFileError) as exc:
                problems.append(str(exc))
                continue
            if orbit:
                try:
                    gaps = read_eof(orbit).gaps(start, stop, margin_s)
                except EofError as exc:
                    problems.append(str(exc))
                    continue
                if gaps:
                    problems.append(
                        f"orbit file {Path(orbit).name} does not cover {path.name} "
                        f"({start:%Y-%m-%dT%H:%M:%S}..{stop:%H:%M:%S} +-{margin_s:g} s: "
                        f"{'; '.join(gaps)}); ISCE would only print 'Could not extract swath'; "
                        "rerun the orbit step"
                    )
    if problems:
        raise IsceRunError(f"{workdir}: " + " | ".join(problems))


# --- resources ----------------------------------------------------------------------------------

# HyP3's memory for an ISCE2 topsApp burst job by looks (range x azimuth) and number of burst
# pairs: ASFHyP3/hyp3 apps/set-batch-overrides/src/set_batch_overrides.py
# (get_insar_isce_burst_memory; HyP3 v10.12.1 doubled 20x4 at >= 13 bursts).
# (looks, max bursts, MiB)
HYP3_MEMORY_MB: tuple[tuple[str, int, int], ...] = (
    ("5x1", 1, 7500), ("5x1", 3, 15500), ("5x1", 10, 31500), ("5x1", 24, 63500), ("5x1", 30, 127500),
    ("10x2", 7, 7500), ("10x2", 20, 15500), ("10x2", 30, 31500),
    ("20x4", 12, 7500), ("20x4", 30, 15500),
)  # fmt: skip
# Fitted upper envelope of that table: GB = base + bursts * (0.45 + 11 / (range x azimuth looks)).
# At 7x19 looks (133) that is 0.53 GB per burst: 27 bursts (3 swaths x 9) -> 15.4 GB. The real
# runs (benchmarks/README.md, isce_groups.py) agree per burst (~0.59 GB per full-width burst in
# coregistration) and show a topsApp process of ~0.1 GB besides: the base is 1 GB (was 2).
_MEM_BASE_GB = 1.0
_MEM_PER_BURST_GB = 0.45
_MEM_PER_BURST_LOOK_GB = 11.0
# CPU-seconds per full-width burst of each group (2 threads), measured with the real topsApp
# 2.6.5 on the shared real stack (benchmarks/isce_groups.py, benchmarks/README.md, 2026-12-05).
CPU_S_PER_BURST = {
    "preprocess": 2.1, "topo": 116.0, "coregistration": 108.0, "interferogram": 11.2,
    "filter": 1.3, "unwrap": 2.1, "geocode": 3.0,
}  # fmt: skip
# SNAPHU scales with the multilooked pixels: its CPU-seconds were measured at 7 x 19 looks.
UNWRAP_CALIBRATION_LOOKS = 7 * 19
# SNAPHU unwrapped the stack's fully coherent signal in seconds; real, partly decorrelated
# scenes take far longer, so the wall-time limit of unwrap allows 30 times the measurement.
_UNWRAP_ALLOWANCE = 30.0
_RUNTIME_SAFETY = 3.0
_RUNTIME_FLOOR_MIN = 10


def memory_mb(group_name: str, bursts: int, range_looks: int, azimuth_looks: int,
              attempt: int = 1) -> int:  # fmt: skip
    """Memory for a group: the HyP3-fitted model for the burst-heavy groups; +50 % per retry."""
    looks = max(1, range_looks * azimuth_looks)
    full = _MEM_BASE_GB + max(1, bursts) * (_MEM_PER_BURST_GB + _MEM_PER_BURST_LOOK_GB / looks)
    if group_name == "preprocess":
        gb = 1.0
    elif group_name in ("filter", "geocode"):
        gb = max(1.0, full / 2)  # multilooked grids only
    else:
        gb = full
    return int(math.ceil(gb * 1000 * (1 + 0.5 * (max(1, attempt) - 1)) / 100) * 100)


def cpu_seconds(group_name: str, bursts: int, range_looks: int, azimuth_looks: int) -> float:
    """The calibrated CPU time of a group for a pair (the same work whatever the threads):
    CPU_S_PER_BURST x bursts; unwrap also scales with the multilooked pixels. The one model
    the rules' runtime, the plan's estimate and benchmarks/cluster_model.py share."""
    per_burst = CPU_S_PER_BURST[group_name]
    if group_name == "unwrap":
        per_burst *= UNWRAP_CALIBRATION_LOOKS / max(1, range_looks * azimuth_looks)
    return per_burst * max(1, bursts)


def runtime_min(group_name: str, bursts: int, range_looks: int, azimuth_looks: int,
                threads: int, attempt: int = 1) -> int:  # fmt: skip
    """Wall time for a group, minutes: calibrated CPU-seconds x safety, per thread."""
    seconds = cpu_seconds(group_name, bursts, range_looks, azimuth_looks)
    if group_name == "unwrap":
        seconds *= _UNWRAP_ALLOWANCE
    seconds *= _RUNTIME_SAFETY / max(1, threads)
    return int(max(_RUNTIME_FLOOR_MIN, math.ceil(seconds / 60)) * max(1, attempt))


# --- disk policy --------------------------------------------------------------------------------

_KEEP_MERGED = re.compile(r"^merged/(.+\.geo(\.xml|\.vrt)?|dem\.crop(\.xml|\.vrt)?)$")


def keep_after_geocode(rel: str, is_image_sidecar: bool = False) -> bool:
    """keep: products — what stays once geocode succeeded (everything else is intermediate).

    Kept: the geocoded products and dem.crop with their sidecars; ISCE's metadata XML
    (topsApp.xml, topsProc.xml, <ref>/IW<n>.xml, fine_coreg/IW<n>.xml, PICKLE/<step>.xml); the
    logs; our own records; the geocode PICKLE. Deleted: burst SLCs, geom_reference,
    coarse_*/fine_*, ESD, ion, the .full merges and the multilooked radar products (with their
    .xml/.vrt sidecars, which would point at nothing), and the PICKLE state of earlier steps (the
    data it refers to is gone, so resuming from it would fail inside ISCE).
    """
    parts = rel.split("/")
    if len(parts) == 1:
        return True  # topsApp.xml, topsProc.xml, isce.log, topsinsar.log, our JSON records
    if parts[0] == "merged":
        return bool(_KEEP_MERGED.match(rel))
    if parts[0] == "PICKLE":
        return rel.endswith(".xml") or rel == "PICKLE/geocode"
    return rel.endswith(".xml") and not is_image_sidecar


def _is_image_sidecar(path: Path) -> bool:
    """<raster>.xml/.vrt of an image: the raster or its VRT sits next to it."""
    stem = path.with_suffix("")
    return stem.is_file() or stem.with_name(stem.name + ".vrt").is_file()


def cleanup_candidates(workdir: str | Path) -> list[Path]:
    workdir = Path(workdir)
    out = []
    for path in sorted(workdir.rglob("*")):
        if path.is_file() or path.is_symlink():
            rel = path.relative_to(workdir).as_posix()
            sidecar = path.suffix == ".xml" and _is_image_sidecar(path)
            if not keep_after_geocode(rel, sidecar):
                out.append(path)
    return out


def cleanup(workdir: str | Path, geocoded: Iterable[str | Path]) -> dict[str, Any]:
    """Delete a finished pair's intermediates; refuse unless every geocoded product exists."""
    workdir = Path(workdir)
    missing = [str(p) for p in geocoded if not Path(p).is_file()]
    if missing:
        raise IsceRunError(
            f"{workdir}: not deleting intermediates, geocoded products are missing "
            f"({', '.join(missing[:3])}); finish the geocode step first"
        )
    freed = 0
    removed = 0
    for path in cleanup_candidates(workdir):
        try:
            size = path.lstat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
        removed += 1
    for folder in sorted((p for p in workdir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            folder.rmdir()  # only empty ones
        except OSError:
            pass
    kept = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
    log.info("%s: deleted %d intermediate files (%.1f MB), %.1f MB kept", workdir, removed,
             freed / 1e6, kept / 1e6)  # fmt: skip
    return {"removed_files": removed, "freed_bytes": freed, "kept_bytes": kept}


def directory_bytes(path: str | Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total

