# Shared set-up: validated config, paths, wildcard constraints and input functions.
import functools
import os
import sys
from pathlib import Path

# the library lives beside the rule scripts
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dinsar.config import validate_config
from dinsar.errors import DinsarError
from dinsar.stack import Stack

try:
    CFG = validate_config(config)
except DinsarError as exc:
    # A user error is one clear message, never a traceback.
    print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
    sys.exit(1)

WORKSPACE = Path(CFG.workspace)


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
    """The default target: the plan now; staging, ISCE and products are added per stage."""
    return rules.plan.output
