"""Run the real workflow with Snakemake in a subprocess, in a temporary working directory."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import environment

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def write_config(directory: Path, config: Mapping[str, Any], name: str = "config.yaml") -> Path:
    """Write a user config (JSON is valid YAML) for --configfile.

    The time series is off unless the config says otherwise: the test double's pairs are no
    stack for MintPy, and a MintPy run in each of the many workflow tests would cost minutes.
    It is on (the default, auto) in the real-topsApp runs (harness.real_services) and in
    test_end_to_end, which prove it.
    """
    path = directory / name
    config = {"timeseries": {"enabled": False}, **config}
    path.write_text(json.dumps(config, indent=1, default=str))
    return path


def snakemake(
    workdir: Path,
    config: Mapping[str, Any] | Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`snakemake -s <repo>/Snakefile -d <workdir> <args> --configfile <cfg>`; never raises.

    The run's environment is the session's without the variables the harness controls
    (harness.environment), plus ``env``.
    """
    cfg = config if isinstance(config, Path) else write_config(workdir, config)
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args, "--configfile", str(cfg)]
    full_env = {**environment.clean(), **(env or {})}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )


def executed_rules(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Rule names of the jobs Snakemake started, in order (from its log lines)."""
    rules = []
    for line in (result.stdout + result.stderr).splitlines():
        stripped = line.strip()
        for prefix in ("rule ", "localrule ", "checkpoint ", "localcheckpoint "):
            if stripped.startswith(prefix) and stripped.endswith(":"):
                rules.append(stripped[len(prefix) : -1])
    return rules


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
