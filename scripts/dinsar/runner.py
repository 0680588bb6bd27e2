"""``dinsar run``: the seed toolkit's one-line run, as the same Snakemake workflow.

``dinsar run --roi WKT --start D --end D`` writes the settings to ``<workspace>/dinsar_run.yaml``
(the record of the run: ``dinsar run --config`` or ``snakemake --configfile`` repeats it) and
starts Snakemake on it; ``dinsar run --config FILE`` starts it on an existing file. Both
validate the settings exactly as the Snakefile does, before anything starts. Snakemake runs
as a child process from an argument list (never a shell string), in the current directory.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .atomic import write_text
from .config import Config, read_config_file, validate_config
from .errors import ConfigError, DinsarError

log = logging.getLogger(__name__)

RECORD_NAME = "dinsar_run.yaml"
SNAKEFILE = Path(__file__).resolve().parents[2] / "Snakefile"


def parse_looks(text: str) -> tuple[int, int]:
    """``"7x19"`` -> (azimuth looks, range looks)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        azimuth, range_ = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not AZIMUTHxRANGE looks, e.g. 7x19") from None
    if azimuth < 1 or range_ < 1:
        raise ValueError(f"{text!r}: looks must be >= 1, e.g. 7x19")
    return azimuth, range_


def settings_from_options(
    roi: str,
    start: str,
    end: str,
    *,
    looks: tuple[int, int] | None = None,
    dem_buffer: float | None = None,
    workspace: str | None = None,
    inventory: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config mapping of the one-line options (what a config file would hold), over the
    settings ``base`` (e.g. a site's service hosts and caches) where given."""
    raw: dict[str, Any] = {**(base or {}), "roi": roi, "dates": {"start": start, "end": end}}
    if workspace is not None:
        raw["workspace"] = workspace
    if inventory is not None:
        raw["inventory"] = str(Path(inventory).resolve())
    if dem_buffer is not None:
        raw["dem"] = {**raw.get("dem", {}), "buffer": dem_buffer}
    if looks is not None:
        raw["isce"] = {**raw.get("isce", {}), "azimuth_looks": looks[0], "range_looks": looks[1]}
    return raw


def write_record(raw: Mapping[str, Any], config: Config) -> Path:
    """Write the settings to ``<workspace>/dinsar_run.yaml`` (the reproducible record)."""
    workspace = Path(config.workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    path = workspace / RECORD_NAME
    header = (
        f"# written by dinsar {__version__} `dinsar run` on "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n"
        f"# repeat with: dinsar run --config {path}\n"
        f"#          or: snakemake --configfile {path}\n"
    )
    body = yaml.safe_dump(_plain(dict(raw)), sort_keys=False, allow_unicode=True)
    return write_text(path, header + body)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def snakemake_program() -> str:
    """The Snakemake of this installation (beside this Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("snakemake")
    if beside.is_file():
        return str(beside)
    found = shutil.which("snakemake")
    if found is None:
        raise DinsarError(
            "snakemake is not installed beside this Python nor on PATH; install the project "
            "with `make .venv/.installed` (or pip install -e .)"
        )
    return found


@dataclass(frozen=True)
class RunPlan:
    """What ``dinsar run`` starts, and where the results will be."""

    config_file: Path
    config: Config
    command: list[str]

    @property
    def workspace(self) -> Path:
        return Path(self.config.workspace)


def prepare(
    config_file: Path | None,
    options: Mapping[str, Any] | None,
    *,
    cores: str = "all",
    plan_only: bool = False,
    targets: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> RunPlan:
    """Validate the settings (file or options), write the record, and build the command:
    Snakemake on ``targets`` (``plan`` with ``plan_only``; default: everything) with the
    options ``extra``."""
    if (config_file is None) == (options is None):
        raise ConfigError("give either --config FILE or --roi, --start and --end, not both")
    raw = read_config_file(config_file) if config_file is not None else dict(options or {})
    config = validate_config(raw)
    if config_file is None:
        config_file = write_record(raw, config)
        log.info("settings written to %s", config_file)
    if not SNAKEFILE.is_file():
        raise DinsarError(
            f"the workflow's Snakefile is not at {SNAKEFILE}; `dinsar run` needs the project's "
            "clone installed with pip install -e ."
        )
    command = [snakemake_program(), "-s", str(SNAKEFILE)]
    command += ["plan"] if plan_only else list(targets)
    command += ["--cores", str(cores), *extra, "--configfile", str(config_file.resolve())]
    return RunPlan(config_file, config, command)


def results_line(plan: RunPlan, plan_only: bool) -> str:
    workspace = plan.workspace
    if plan_only:
        return (
            f"plan: {workspace / 'plan'} (summary.txt, pairs.csv, network.png, coverage.png); "
            f"run it all with: dinsar run --config {plan.config_file}"
        )
    return (
        f"products: {workspace / 'products'} (one folder per pair, stack/ for the summaries); "
        f"settings: {plan.config_file}"
    )


def start(plan: RunPlan, env: Mapping[str, str] | None = None, capture: bool = False) -> int:
    """Run Snakemake in the current directory; its exit code. ``capture`` prints its output
    through this process (so a notebook shows it) instead of handing it the terminal."""
    log.info("starting: %s", " ".join(plan.command))
    environ = None if env is None else dict(env)
    if not capture:
        return subprocess.run(plan.command, env=environ, check=False).returncode
    with subprocess.Popen(plan.command, env=environ, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
        return proc.wait()


def run(
    config_file: str | Path,
    *targets: str,
    cores: str = "all",
    extra: Sequence[str] = (),
    check: bool = True,
) -> RunPlan:
    """For notebooks and scripts: Snakemake on ``targets`` of an existing config (with the
    options ``extra``, e.g. ``["-n"]``), its output printed; raises :class:`DinsarError` when
    it fails (``check``)."""
    plan = prepare(Path(config_file), None, cores=cores, targets=targets, extra=extra)
    code = start(plan, capture=True)
    if check and code != 0:
        raise DinsarError(
            f"snakemake {' '.join(targets) or '(everything)'} failed (exit {code}); its output "
            f"above and the logs in {plan.workspace / 'logs'} name the cause"
        )
    return plan
