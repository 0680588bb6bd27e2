# Shared set-up: validated config, paths, wildcard constraints and input functions.
import contextlib
import functools
import hashlib
import io
import math
import os
import sys
from pathlib import Path

# the library lives beside the rule scripts
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dinsar.config import validate_config
from dinsar.records import DemExtent
from dinsar.errors import INTERRUPTED, DinsarError
from dinsar.failures import FailedJob, failure_summary
from dinsar.geometry import TAKEN_RECORD as GEOMETRY_TAKEN
from dinsar.isce_run import PAIR_INFO, memory_mb, pair_bursts, runtime_min
from dinsar.locks import (
    claim_lock,
    clear_stale_lock,
    record_lock_owner,
    release_claim,
    running_run,
    runs_jobs,
)
from dinsar.search import inventory_is_current, search_settings
from dinsar.pairs import timeseries_eligibility
from dinsar.plan import bursts_and_swaths
from dinsar.roi import parse_roi
from dinsar.stack import Stack
from dinsar.topsapp import (
    TopsAppNotFound,
    compatibility_error,
    conda_env_topsapp,
    find_topsapp,
    incompatible_scenes,
    requires_isce,
)


def one_line_interrupt(kind, value, traceback, previous=sys.excepthook):
    """Ctrl-C outside the jobs (reading the Snakefile, building the DAG): one line, no traceback
    (while jobs run, Snakemake stops them and each job's glue says it once)."""
    if issubclass(kind, KeyboardInterrupt):
        print(f"dInSAR-Toolkit: {INTERRUPTED}", file=sys.stderr)
    else:
        previous(kind, value, traceback)


if workflow.is_main_process:
    sys.excepthook = one_line_interrupt

try:
    CFG = validate_config(config)
except DinsarError as exc:
    # A user error is one clear message, never a traceback.
    print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
    sys.exit(1)

WORKSPACE = Path(CFG.workspace)


@functools.cache
def command_line_options():
    """Snakemake's options as its own parser reads this invocation's command line, or None
    when it cannot (Snakemake called through its API). Snakemake 9 says dryrun is False while
    the Snakefile is read, and says nowhere that a report is being built: the command line
    tells both."""
    from snakemake.cli import get_argument_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            options, _ = get_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:
        return None
    return vars(options)


def runs_jobs_here():
    """Whether this invocation runs jobs: not a dry run (-n), --lint, --report, --dag ...
    Options that cannot be read count as a real run."""
    if workflow.dryrun:
        return False
    options = command_line_options()
    return options is None or runs_jobs(options)


# profiles/default sets `cores: all`, so `snakemake plan --configfile F` needs no --cores.
# Snakemake loads that profile after --profile profiles/slurm too, where --cores would cap
# every cluster job's threads at the login node's CPU count: jobs that go to a cluster
# (--jobs) are limited by --jobs and their own threads, not by the cores of this machine.
if workflow.global_resources["_nodes"].value is not None:
    workflow.global_resources["_cores"] = None

# A killed run leaves Snakemake's lock behind; a plain rerun removes it when its owner is gone.
# Runs on different workspaces share the project folder's .snakemake: only a real run on the
# same workspace is refused; a plan or dry run on another one goes ahead.
if workflow.is_main_process and runs_jobs_here():
    _stale = clear_stale_lock(os.getcwd())
    if _stale:
        print(f"dInSAR-Toolkit: {_stale}", file=sys.stderr)
    # Snakemake's lock only sees files both runs' first DAGs share: refuse any live holder
    _running = running_run(os.getcwd(), WORKSPACE)
    if _running:
        print(f"dInSAR-Toolkit: {_running}", file=sys.stderr)
        sys.exit(1)
    # before Snakemake takes its lock: until onstart records the owner, this claim is what
    # keeps the next run from taking this run's lock for the last, finished run's
    claim_lock(os.getcwd(), WORKSPACE)


onstart:
    record_lock_owner(os.getcwd(), WORKSPACE)


def failed_jobs():
    """The jobs of this run that failed for good (retries used up), from Snakemake's scheduler
    (its log also lists attempts that a retry then finished); a group job's members."""
    jobs = getattr(getattr(workflow, "scheduler", None), "failed", ())
    return [
        FailedJob(j.rule.name, tuple(j.wildcards.items()), tuple(map(str, j.log)))
        for job in jobs
        for j in getattr(job, "jobs", [job])
    ]


onsuccess:
    release_claim(os.getcwd())


# the causes on the last screen, however long the run was
onerror:
    release_claim(os.getcwd())
    print(failure_summary(failed_jobs()), file=sys.stderr)


# Which topsApp.py runs and its version, said before anything runs (plan, -n, stage, run).
# Found once per invocation; a version probe that must start a program is cached here.
TOPSAPP_PROBE_CACHE = str(WORKSPACE / ".dinsar" / "topsapp.json")
CONDA_ISCE = "conda" in {
    str(m).lower() for m in workflow.deployment_settings.deployment_method
}


def find_isce():
    """(TopsApp or None, why not): the topsApp this run uses."""
    if CONDA_ISCE:
        return conda_env_topsapp(Path(workflow.basedir) / "envs" / "isce2.yaml"), ""
    try:
        return find_topsapp(CFG.isce.topsapp, os.environ, TOPSAPP_PROBE_CACHE), ""
    except TopsAppNotFound as exc:
        return None, str(exc)


if workflow.is_main_process:
    TOPSAPP, NO_TOPSAPP = find_isce()
    if TOPSAPP is not None:
        print(f"dInSAR-Toolkit: topsApp: {TOPSAPP.describe()}", file=sys.stderr)
    else:
        print(
            f"dInSAR-Toolkit: {NO_TOPSAPP} (staging works without it)",
            file=sys.stderr,
        )
else:
    TOPSAPP, NO_TOPSAPP = None, ""


def ws(*parts):
    """A path inside the workspace."""
    return str(WORKSPACE.joinpath(*parts))


def cache(kind, *parts):
    """A path inside a (possibly shared) download cache."""
    return str(CFG.cache_dir(kind).joinpath(*parts))


wildcard_constraints:
    date=r"\d{8}",
    pair=r"\d{8}_\d{8}",
    track=r"\d{1,3}_(ASC|DESC)",
    granule=r"S1[A-D]_IW_SLC__1S[SD][HV]_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_[0-9A-F]{4}",
    burst=r"S1_\d{6}_IW[1-3]_\d{8}T\d{6}_(VV|VH|HH|HV)_[0-9A-F]{4}-BURST",
    slice=r"S1[A-D]_IW_SLC__1S[SD][HV]_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_[0-9A-F]{4}",
    pol=r"VV|VH|HH|HV",
    safe=r"\d{1,3}_(ASC|DESC)_\d{8}_\d{1,3}(_IW[1-3]_\d{6}-\d{6})+_(VV|VH|HH|HV)",


@functools.cache
def _load_stack(scenes, dates, scenes_mtime, dates_mtime):
    # mtimes are part of the key so a re-run search is never served from a stale cache
    try:
        return Stack.load(scenes, dates, CFG)
    except DinsarError as exc:
        print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
        sys.exit(1)


# The search outputs are read through stack() and by path (params), never as input files:
# jobs that take a checkpoint's outputs as inputs are re-evaluated one by one once it is
# done (minutes for big stacks), and a new search must not re-run 200 GB of downloads.
INVENTORY = {
    "scenes": ws("inventory", "scenes.geojson"),
    "dates": ws("inventory", "dates.csv"),
}


def after_search(wildcards):
    """No input file: asking for the stack makes Snakemake run the search first when it must."""
    stack()
    return []


def after_login(output):
    """No input file. While SLCs are still to be downloaded and ``output`` is missing, the job
    waits for the preflight (Earthdata login, free disk, ISCE2): a missing or rejected login
    stops every download (orbits, AUX_CAL; the DEM waits for the zips) before any starts.
    """
    if Path(output).is_file():
        return []
    if any(not path.is_file() for path in download_paths()):
        checkpoints.preflight.get()
    return []


def download_paths():
    """Every file the downloads put into the shared caches for the current pairs: the SLC
    zips, or in burst mode each burst's TIFF and its slice's metadata."""
    return [target.dest for target in stack().download_targets(CFG)]


def safe_zip_pattern():
    """The path pattern of the SAFE zips topsApp reads: the SLC cache's ({granule}), or in
    burst mode the SAFE assembled from a date's bursts ({safe}).
    """
    if stack().burst_mode:
        return rules.burst_safe.output.zip
    return rules.download_slc.output.zip


def safe_zips(acquisition):
    """A date's SAFE zips (either route); everything downstream takes them alike."""
    pattern = safe_zip_pattern()
    return [pattern.format(granule=n, safe=n) for n in acquisition.safe_names]


def inventory_digest():
    """Digest of the search outputs (a rule's params: a new search result re-runs the rule)."""
    return _digest(*INVENTORY.values(), *_mtimes(*INVENTORY.values()))


@functools.cache
def _digest(scenes, dates, scenes_mtime, dates_mtime):
    digest = hashlib.sha256()
    for path in (scenes, dates):
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            return ""
    return digest.hexdigest()


def _search_forced():
    """-F, -R search or a forced target: the search runs again, so its old outputs are stale."""
    dag = workflow.dag_settings
    forced = {str(r) for r in dag.forcerun}
    return dag.forceall or dag.forcetargets or "search" in forced


def stack():
    """The dates, scenes and pairs; only known once the search checkpoint has run.

    A finished search made for this config is read directly: going through the checkpoint
    makes Snakemake re-evaluate every job that depends on it, which costs minutes for a
    thousand pairs. Anything else (no search yet, settings changed, forced) takes the
    checkpoint route, so Snakemake searches first and then builds the rest of the DAG.
    """
    scenes, dates = INVENTORY["scenes"], INVENTORY["dates"]
    mtimes = _mtimes(scenes, dates)  # stack() runs once per job: stat the files once
    if not _search_forced() and _inventory_current(scenes, dates, *mtimes):
        return _load_stack(scenes, dates, *mtimes)
    out = checkpoints.search.get().output
    return _load_stack(out.scenes, out.dates, *_mtimes(out.scenes, out.dates))


def _mtimes(*paths):
    try:
        return tuple(os.stat(p).st_mtime_ns for p in paths)
    except OSError:
        return (None,) * len(paths)


@functools.cache
def _inventory_current(scenes, dates, scenes_mtime, dates_mtime):
    return scenes_mtime is not None and inventory_is_current(scenes, dates, CFG)


def isce_status(for_run=False):
    """What the plan (about a full run) and the preflight (this run's targets) say about
    ISCE2 for the current stack."""
    # the targets are known once the Snakefile is read (Snakemake sets them afterwards)
    required = for_run or requires_isce(workflow.dag_settings.targets)
    status = {"required": required, "topsapp": None, "problem": NO_TOPSAPP}
    if TOPSAPP is not None:
        status["topsapp"] = TOPSAPP.describe()
        scenes = [stack().scenes_by_granule[g] for g in stack().granules]
        incompatible = incompatible_scenes(scenes, TOPSAPP)
        if incompatible:
            status["problem"] = compatibility_error(incompatible, TOPSAPP)
    return status


# a dry run on a finished search already knows whether the run will stop for its ISCE2
if workflow.is_main_process and TOPSAPP is not None:
    _saved = (*INVENTORY.values(), *_mtimes(*INVENTORY.values()))
    if _inventory_current(*_saved):
        _stack = _load_stack(*_saved)
        _bad = incompatible_scenes(
            [_stack.scenes_by_granule[g] for g in _stack.granules], TOPSAPP
        )
        if _bad:
            print(
                "dInSAR-Toolkit: a run stops before any download (staging only warns): "
                + compatibility_error(_bad, TOPSAPP),
                file=sys.stderr,
            )


def pair_ids():
    try:
        return [p.id for p in stack().pairs]
    except DinsarError as exc:
        print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
        sys.exit(1)


def search_params():
    """Everything the search depends on: a change re-runs it (params are a rerun trigger)."""
    return search_settings(CFG)


def _report_requested():
    """`snakemake --report FILE` (not --report-after-run): the DAG is only built to gather the
    report's files."""
    options = command_line_options() or {}
    return bool(options.get("report")) and not options.get("report_after_run")


# The report shows what exists, from the plan onwards: its targets keep only existing files.
REPORTING = workflow.is_main_process and _report_requested()


def for_report(files):
    """The targets as they are; in a report, the plan and those of the targets that exist."""
    if not REPORTING:
        return files
    if not os.path.exists(rules.plan.output.summary):
        print(
            "dInSAR-Toolkit: nothing to report yet: the report starts with the plan; "
            "run `snakemake plan` first",
            file=sys.stderr,
        )
        sys.exit(1)
    wanted = dict.fromkeys([*rules.plan.output, *files])
    return [f for f in wanted if os.path.exists(f)]


def all_outputs(wildcards):
    """The default target: the plan, every pair through topsApp to its products, the stack
    summaries and the processing table (staging is pulled in by the pairs).

    One file per final job is enough: Snakemake re-makes a job when any of its outputs is
    missing, and asking for every file would cost a lookup each (10 000s for big stacks).
    In a report, only what exists (for_report).
    """
    if REPORTING:
        for_report([])  # the plan first: the pairs are only known once it ran
    finals = []
    for pair in pair_ids():
        # the quicklooks need the export, which needs the geocoded products
        finals.append(ws("products", pair, "quicklook_coherence.png"))
        if CFG.keep == "products":
            finals.append(rules.isce_cleanup.output[0].format(pair=pair))
    finals += geometry_cleanups()
    return for_report(
        list(rules.plan.output)
        + finals
        + list(rules.stack_summary.output)
        + list(rules.processing_report.output)
        + timeseries_files()
    )


# --- ISCE step groups (rules/isce.smk) ----------------------------------------------------

# bursts per pair before its topsApp.xml exists (resources in a dry run): from the ROI
ISCE_BURSTS_ESTIMATE = math.prod(bursts_and_swaths(parse_roi(CFG.roi)))
ISCE_LOOKS = (CFG.isce.range_looks, CFG.isce.azimuth_looks)


# the geometry job of a reference date (rules/isce.smk, isce.reuse_geometry)
GEOMETRY_WORK = ws("work", "geometry", "{date}")


def isce_workdir(wildcards):
    """A pair's topsApp folder, or a reference date's geometry job's."""
    if hasattr(wildcards, "pair"):
        return ws("work", wildcards.pair)
    return GEOMETRY_WORK.format(date=wildcards.date)


def reference_geometry(wildcards):
    """The geometry job a pair's topo takes (its reference date's), or nothing: reuse is off,
    or the pair's topo ran without one (before reuse was turned on: it is not rerun for it).
    """
    if not CFG.isce.reuse_geometry:
        return []
    work = ws("work", wildcards.pair)
    done = os.path.exists(os.path.join(work, "PICKLE", "topo.xml"))
    if done and not os.path.exists(os.path.join(work, GEOMETRY_TAKEN)):
        return []
    date = stack().pair_by_id[wildcards.pair].reference
    return rules.isce_geometry.output.metadata.format(date=date)


def geometry_cleanups():
    """keep: products with isce.reuse_geometry: one cleanup per reference date."""
    if CFG.keep != "products" or not CFG.isce.reuse_geometry:
        return []
    return expand(
        rules.isce_geometry_cleanup.output[0], date=stack().pairs_by_reference
    )


def isce_bursts(wildcards):
    return pair_bursts(
        os.path.join(isce_workdir(wildcards), PAIR_INFO), ISCE_BURSTS_ESTIMATE
    )


def isce_memory(group):
    """A step group's mem_mb: scaled by the pair's bursts and looks, +50 % per retry."""
    return lambda wc, attempt: memory_mb(group, isce_bursts(wc), *ISCE_LOOKS, attempt)


def isce_runtime(*groups):
    """The runtime (minutes) of a step group, or of the groups a job runs, longer with each
    retry."""
    return lambda wc, threads, attempt: sum(
        runtime_min(group, isce_bursts(wc), *ISCE_LOOKS, threads, attempt)
        for group in groups
    )


# --- products and report (rules/products.smk, rules/report.smk) ---------------------------


def products_geocoded():
    """The geocode-list entries topsApp really writes (ISCE_GEOCODE, from rules/isce.smk)."""
    return list(ISCE_GEOCODE)


def export_inputs(wildcards):
    """The geocode step's record (its outputs are all there when it is) and the orbit records.

    Asking for the stack first puts the export behind the search when that must run.
    """
    stack()
    ref, sec = wildcards.pair.split("_")
    return {
        "geocoded": ws("work", wildcards.pair, "PICKLE", "geocode.xml"),
        "orbits": [ws("orbits", f"{ref}.json"), ws("orbits", f"{sec}.json")],
        "dem": ws("dem", stack().pair_by_id[wildcards.pair].track, "dem.json"),
    }


def quicklook_outputs():
    """One report item per quicklook; the displacement one only when there is unwrapped phase."""
    kinds = {"wrapped_phase": "Wrapped phase", "coherence": "Coherence"}
    if "los_displacement" in PRODUCT_FILES:
        kinds = {"displacement": "LOS displacement", **kinds}
    return {
        kind: report(
            ws("products", "{pair}", f"quicklook_{kind}.png"),
            caption=f"../report/quicklook_{kind}.rst",
            category="2. Pairs",
            subcategory="{pair}",
            labels={"pair": "{pair}", "figure": label},
        )
        for kind, label in kinds.items()
    }


def pair_products(wildcards=None):
    """Every pair's rasters, metadata and quicklooks."""
    files = []
    for pair in pair_ids():
        files += [ws("products", pair, f) for f in PRODUCT_FILES.values()]
        files.append(ws("products", pair, "metadata.json"))
        files += [
            ws("products", pair, f"quicklook_{k}.png") for k in quicklook_outputs()
        ]
    return files


def stack_inputs(wildcards):
    pairs = pair_ids()
    files = {
        "metadata": [ws("products", p, "metadata.json") for p in pairs],
        "pairs": ws("plan", "pairs.csv"),
    }
    if "los_displacement" in PRODUCT_FILES:
        files["displacement"] = [
            ws("products", p, "los_displacement.tif") for p in pairs
        ]
    return files


def stack_outputs():
    outputs = {
        "network": report(
            ws("products", "stack", "network_coherence.png"),
            caption="../report/stack_network.rst",
            category="3. Stack",
            labels={"figure": "pair network by coherence"},
        ),
        "coherence": report(
            ws("products", "stack", "mean_coherence.png"),
            caption="../report/stack_coherence.rst",
            category="3. Stack",
            labels={"figure": "mean coherence per pair"},
        ),
        "table": ws("products", "stack", "pairs_summary.csv"),
    }
    if "los_displacement" in PRODUCT_FILES:
        outputs["grid"] = report(
            ws("products", "stack", "displacement_grid.png"),
            caption="../report/stack_displacement_grid.rst",
            category="3. Stack",
            labels={"figure": "displacement of every pair"},
        )
    return outputs


def processing_inputs(wildcards):
    return {
        "orbits": [ws("orbits", f"{d}.json") for d in stack().dates],
        "summary": ws("products", "stack", "pairs_summary.csv"),
        "dems": [ws("dem", track, "dem.json") for track in stack().tracks],
        "metadata": [ws("products", p, "metadata.json") for p in pair_ids()],
    }


def products_targets(wildcards=None):
    """Pair products and quicklooks, stack summaries and the processing table (all targets;
    in a report, the ones that exist)."""
    if REPORTING:
        for_report([])
    return for_report(
        pair_products()
        + list(rules.stack_summary.output)
        + list(rules.processing_report.output)
    )


# --- time series (rules/timeseries.smk) ---------------------------------------------------


def timeseries_tracks():
    """The tracks whose time series runs (timeseries.enabled, dinsar.pairs' eligibility); with
    enabled: true a track that cannot be inverted stops here, as in the plan."""
    if CFG.timeseries.enabled is False:
        return []
    tracks = []
    for track in stack().tracks:
        pairs = [p for p in stack().pairs if p.track == track]
        ok, reason = timeseries_eligibility(stack().track_dates(track), pairs)
        if ok:
            tracks.append(track)
        elif CFG.timeseries.enabled is True:
            print(
                f"dInSAR-Toolkit: timeseries.enabled: true, but MintPy cannot invert track "
                f"{track}: {reason} (or set timeseries.enabled: auto to skip this track)",
                file=sys.stderr,
            )
            sys.exit(1)
    return tracks


def handoff_inputs(wildcards):
    return {
        "metadata": ws("products", wildcards.pair, "metadata.json"),
        "dem": ws("dem", stack().pair_by_id[wildcards.pair].track, "dem.json"),
    }


def timeseries_inputs(wildcards):
    pairs = [p.id for p in stack().pairs if p.track == wildcards.track]
    return {"handoffs": [ws("products", p, "mintpy") for p in pairs]}


def timeseries_outputs():
    """The track's time-series products; the per-date COGs, named by date, are listed in
    timeseries.json, which is written last."""
    folder = ws("products", "timeseries", "{track}")
    return {
        "velocity": f"{folder}/velocity.tif",
        "coherence": f"{folder}/temporal_coherence.tif",
        "history": f"{folder}/history.csv",
        "velocity_png": report(
            f"{folder}/velocity.png",
            caption="../report/timeseries_velocity.rst",
            category="5. Time series",
            subcategory="{track}",
            labels={"track": "{track}", "figure": "LOS velocity"},
        ),
        "history_png": report(
            f"{folder}/history.png",
            caption="../report/timeseries_history.rst",
            category="5. Time series",
            subcategory="{track}",
            labels={"track": "{track}", "figure": "displacement history"},
        ),
        "summary": f"{folder}/timeseries.json",
    }


def timeseries_files():
    """The final files of every running track's time series (the rule's own outputs)."""
    outputs = rules.timeseries_track.output
    return [
        str(path).format(track=track)
        for track in timeseries_tracks()
        for path in (outputs.summary, outputs.velocity_png, outputs.history_png)
    ]


def timeseries_targets(wildcards=None):
    """Every running track's time series (in a report, what exists)."""
    if REPORTING:
        for_report([])
    return for_report(timeseries_files())
