"""Glue shared by the rule scripts: logging, one-line user errors, and mock_snakemake.

Rule scripts stay thin: read ``snakemake.*``, call the ``dinsar`` library, write outputs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "scripts") not in sys.path:  # the library lives beside the scripts
    sys.path.insert(0, str(ROOT / "scripts"))

from dinsar.errors import INTERRUPTED, DinsarError  # noqa: E402
from dinsar.logs import configure_logging, error_to_log_files  # noqa: E402


def run(main: Callable[[Any], None], snakemake: Any) -> None:
    """Run a rule's main(snakemake); a user error becomes one line on stderr and in the log,
    and so does Ctrl-C (no traceback; exit status 130, as a shell reports SIGINT)."""
    log_file = snakemake.log[0] if len(snakemake.log) else None
    try:
        configure_logging(log_file)
        main(snakemake)
    except DinsarError as exc:
        logging.getLogger("dinsar").error("%s", exc)
        print(f"dInSAR-Toolkit error in rule {snakemake.rule}: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: still one line
        # a SIGTERM the step runner turned into this (scancel, a wall-time limit) says so
        what = f"interrupted ({exc.args[0]})" if exc.args else INTERRUPTED
        error_to_log_files(what)
        print(f"dInSAR-Toolkit: rule {snakemake.rule} {what}", file=sys.stderr)
        sys.exit(130)


def mock_snakemake(rulename: str, configfiles: list[str] | None = None, **wildcards: str) -> Any:
    """A ``snakemake`` object for running a rule script by hand, e.g. in a debugger.

    Usage at the end of a script:
        if "snakemake" not in globals():
            snakemake = mock_snakemake("plan", configfiles=["config/roi.yaml"])
    """
    import snakemake as sm
    from snakemake.api import Workflow
    from snakemake.common import SNAKEFILE_CHOICES
    from snakemake.logging import LoggerManager
    from snakemake.script import Snakemake
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ResourceSettings,
        StorageSettings,
        WorkflowSettings,
    )
    from snakemake.utils import Dict

    os.chdir(ROOT)
    snakefile = next(ROOT / name for name in SNAKEFILE_CHOICES if (ROOT / name).exists())
    configfiles = [Path(f) for f in (configfiles or [])]
    workflow = Workflow(
        ConfigSettings(configfiles=configfiles),
        ResourceSettings(),
        WorkflowSettings(),
        LoggerManager(),
        StorageSettings(),
        DAGSettings(rerun_triggers=[]),
        storage_provider_settings={},
    )
    workflow.include(snakefile)
    for configfile in configfiles:
        workflow.configfile(configfile)
    workflow.global_resources = {}
    rule = workflow.get_rule(rulename)
    dag = sm.dag.DAG(workflow, rules=[rule])
    job = sm.jobs.Job(rule, dag, Dict(wildcards))
    for io in (job.input, job.output, job.log):
        for index, _ in enumerate(io):
            io[index] = os.path.abspath(io[index])
    return Snakemake(
        job.input,
        job.output,
        job.params,
        job.wildcards,
        job.threads,
        job.resources,
        job.log,
        job.dag.workflow.config,
        job.rule.name,
        None,
    )
