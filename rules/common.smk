# Shared set-up: validated config, paths, wildcard constraints and input functions.
import functools
import os
import sys
from pathlib import Path

# the library lives beside the rule scripts
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dinsar.config import validate_config
from dinsar.errors import DinsarError
from dinsar.locks import clear_stale_lock, record_lock_owner
from dinsar.stack import Stack

try:
    CFG = validate_config(config)
except DinsarError as exc:
    # A user error is one clear message, never a traceback.
    print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
    sys.exit(1)

WORKSPACE = Path(CFG.workspace)

# A killed run leaves Snakemake's lock behind; a plain rerun removes it when its owner is gone.
if workflow.is_main_process and not workflow.dryrun:
    _stale = clear_stale_lock(os.getcwd())
    if _stale:
        print(f"dInSAR-Toolkit: {_stale}", file=sys.stderr)


onstart:
    record_lock_owner(os.getcwd())


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


@functools.cache
def _load_stack(scenes, dates, scenes_mtime, dates_mtime):
    # mtimes are part of the key so a re-run search is never served from a stale cache
    try:
        return Stack.load(scenes, dates, CFG)
    except DinsarError as exc:
        print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
        sys.exit(1)


def stack():
    """The dates, scenes and pairs; only known once the search checkpoint has run."""
    out = checkpoints.search.get().output
    return _load_stack(
        out.scenes,
        out.dates,
        os.stat(out.scenes).st_mtime_ns,
        os.stat(out.dates).st_mtime_ns,
    )


def pair_ids():
    try:
        return [p.id for p in stack().pairs]
    except DinsarError as exc:
        print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
        sys.exit(1)


def search_params():
    """Everything the search depends on: a change re-runs it (params are a rerun trigger)."""
    return {
        "roi": CFG.roi,
        "dates": [str(CFG.dates.start), str(CFG.dates.end)],
        "inventory": CFG.inventory,
        "search": CFG.search.model_dump(),
    }


def all_outputs(wildcards):
    """The default target: the plan, every pair through topsApp to its products, the stack
    summaries and the processing table (staging is pulled in by the pairs)."""
    isce = pair_targets(
        pair_ids(),
        ws,
        geocode=ISCE_GEOCODE,
        unwrap=CFG.isce.unwrap,
        unwrapper=CFG.isce.unwrapper,
        keep=CFG.keep,
    )
    return list(rules.plan.output) + isce + products_targets()


# --- products and report (rules/products.smk, rules/report.smk) ---------------------------


def products_geocoded():
    """The geocode-list entries topsApp really writes (ISCE_GEOCODE, from rules/isce.smk)."""
    return list(ISCE_GEOCODE)


def export_inputs(wildcards):
    """The geocoded rasters with their ISCE .xml (band layout and grid), and the orbit records."""
    files = {}
    for entry in products_geocoded():
        name = entry.removeprefix("merged/")
        if name in ("dem.crop",) or entry.endswith(".ion"):
            continue
        key = name.replace(".", "_")
        files[key] = ws("work", wildcards.pair, f"{entry}.geo")
        files[f"{key}_xml"] = ws("work", wildcards.pair, f"{entry}.geo.xml")
    ref, sec = wildcards.pair.split("_")
    files["orbits"] = [ws("orbits", f"{ref}.json"), ws("orbits", f"{sec}.json")]
    return files


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
    }


def products_targets(wildcards=None):
    """Pair products and quicklooks, stack summaries and the processing table (all targets)."""
    return (
        pair_products()
        + list(rules.stack_summary.output)
        + list(rules.processing_report.output)
    )
