"""Which topsApp.py runs, which ISCE2 it is, and the environment it runs in.

Order (the first that exists wins):

1. ``isce.topsapp`` from the config: a command (a path, a wrapper, a container command such as
   ``apptainer exec isce2.sif topsApp.py``), split like a shell would but never run by one;
2. the project's own build (``make isce2``): ``install.json`` under the builds folder,
   ``$DINSAR_ISCE2_ROOT`` or ``${XDG_CACHE_HOME:-~/.cache}/dinsar-toolkit/isce2`` (the same
   default as envs/isce2/build.sh; a test keeps the two equal);
3. ``topsApp.py`` on PATH or in ``$ISCE_HOME/applications`` (a conda env, a site module).

So an older ISCE2 on PATH (conda-forge's 2.6.4) never shadows the project's build, and a
recent install the user provides is used as it is. ``make run`` and ``make test`` build
ISCE2 only when none of these gives 2.6.5 or newer (``python -m dinsar isce2 --need``).

How it runs. topsApp must run with the interpreter ISCE was built against (its own numpy and
GDAL): never whatever ``python3`` comes first on PATH, which under Snakemake is the workflow's
venv. ISCE also starts its own helper scripts (``imageMath.py``) through the shell with a
``#!/usr/bin/env python3`` line, so that interpreter's folder and ``$ISCE_HOME/applications``
go first on PATH. OMP_NUM_THREADS is the rule's threads; OMP_WAIT_POLICY=PASSIVE stops idle
OpenMP threads spinning (topo used 330 instead of 190 CPU-s per burst on a busy machine).

The version. A build's ``install.json`` records it; a Python install is asked
(``import isce; isce.__version__``); a command or wrapper prints it in its banner
(``ISCE VERSION = x.y.z``) when run with ``--help``. A probe that must start a program is done
once and cached (``cache_file``, in the workspace) until the program's files change.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import write_json
from .errors import DinsarError

log = logging.getLogger(__name__)

# The first release that reads Sentinel-1D (2.6.4 raises on its annotation) and that computes
# Sentinel-1C tracks after the June 2026 orbit change (absolute orbit 8018).
MIN_VERSION = "2.6.5"
S1C_ORBIT_CHANGE = 8018
PROBE_TIMEOUT_S = 300
_BANNER_RE = re.compile(r"ISCE VERSION\s*=\s*([0-9][0-9A-Za-z._-]*)")
HOW_TO_GET = (
    "run `make isce2` (builds ISCE2 2.6.5 in a few minutes), set isce.topsapp to a topsApp.py "
    "command, or put an ISCE2 >= 2.6.5 on PATH (README: ISCE2)"
)


class TopsAppNotFound(DinsarError):
    """No topsApp.py to run."""


@dataclass(frozen=True)
class TopsApp:
    """A runnable topsApp: the argument list before ``topsApp.xml`` and what it needs."""

    command: tuple[str, ...]
    version: str | None
    origin: str  # isce.topsapp | project build | PATH | ISCE_HOME
    python: str | None = None  # the interpreter ISCE was built against (None: a command)
    isce_home: str | None = None
    pythonpath: str | None = None
    path_prefix: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        version = f"ISCE2 {self.version}" if self.version else "ISCE2 version unknown"
        return f"{shlex.join(self.command)} ({version}, {self.origin})"

    @property
    def recent(self) -> bool:
        return self.version is not None and version_key(self.version) >= version_key(MIN_VERSION)

    def environment(self, base: Mapping[str, str], threads: int) -> dict[str, str]:
        """The environment topsApp runs in."""
        env = dict(base)
        if self.isce_home:
            env["ISCE_HOME"] = self.isce_home
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (self.pythonpath, base.get("PYTHONPATH", "")) if p
            )
        if self.python:
            # the venv's site-packages must not leak into ISCE's interpreter
            env.pop("PYTHONHOME", None)
            env.pop("VIRTUAL_ENV", None)
        if self.path_prefix:
            env["PATH"] = os.pathsep.join([*self.path_prefix, base.get("PATH", "")])
        env["OMP_NUM_THREADS"] = str(threads)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # unbuffered: the log then holds ISCE's output up to the point where it crashed
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def version_key(text: str) -> tuple[int, ...]:
    """'2.6.5' -> (2, 6, 5); text after the numbers is ignored."""
    return tuple(int(p) for p in re.findall(r"\d+", text.split("-")[0])[:3])


# --- where builds live -------------------------------------------------------------------------


def builds_root(env: Mapping[str, str]) -> Path:
    if env.get("DINSAR_ISCE2_ROOT"):
        return Path(env["DINSAR_ISCE2_ROOT"])
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "dinsar-toolkit" / "isce2"


def project_build(env: Mapping[str, str]) -> TopsApp | None:
    """The newest finished build (its install.json is written last) under the builds folder."""
    root = builds_root(env)
    found: list[tuple[tuple[int, ...], dict[str, Any]]] = []
    for manifest in sorted(root.glob("*/install.json")) if root.is_dir() else []:
        try:
            data = json.loads(manifest.read_text())
            if Path(data["topsapp"]).is_file() and Path(data["python"]).is_file():
                found.append((version_key(data["version"]), data))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable ISCE2 build record %s", manifest)
    if not found:
        return None
    data = max(found, key=lambda item: item[0])[1]
    prefix = Path(data["pythonpath"]).parent
    shim = prefix / "bin"  # python3 -> the build's interpreter (for ISCE's own scripts)
    return TopsApp(
        command=(data["python"], data["topsapp"]),
        version=data["version"],
        origin=f"project build in {prefix}",
        python=data["python"],
        isce_home=data["isce_home"],
        pythonpath=data["pythonpath"],
        path_prefix=(
            str(shim) if shim.is_dir() else str(Path(data["python"]).parent),
            str(Path(data["isce_home"]) / "applications"),
        ),
    )


# --- finding and probing ------------------------------------------------------------------------


def find_topsapp(setting: str | Sequence[str] | None, env: Mapping[str, str],
                 cache_file: str | Path | None = None, use_builds: bool = True) -> TopsApp:  # fmt: skip
    """The topsApp that runs (see the module docstring); TopsAppNotFound if there is none.

    use_builds=False skips the project's build: under ``--sdm conda`` the rule's conda env
    (activated: on PATH / ISCE_HOME) is what the user asked for.
    """
    if setting:
        return _from_setting(setting, env, cache_file)
    build = project_build(env) if use_builds else None
    if build is not None:
        return build
    home = env.get("ISCE_HOME")
    path = env.get("PATH", "")
    found = shutil.which("topsApp.py", path=path)
    origin = "PATH"
    if found is None and home:
        candidate = Path(home) / "applications" / "topsApp.py"
        if candidate.is_file():
            found, origin = str(candidate), "ISCE_HOME"
    if found is None:
        where = f" or in {Path(home) / 'applications'}" if home else ""
        raise TopsAppNotFound(f"no ISCE2: topsApp.py is not on PATH{where}; {HOW_TO_GET}")
    return _from_script(Path(found), origin, env, cache_file)


def _from_setting(setting: str | Sequence[str], env: Mapping[str, str],
                  cache_file: str | Path | None) -> TopsApp:  # fmt: skip
    command = shlex.split(setting) if isinstance(setting, str) else [str(p) for p in setting]
    if not command:
        raise TopsAppNotFound("isce.topsapp is empty; give a command or null")
    program = shutil.which(command[0], path=env.get("PATH"))
    if program is None:
        raise TopsAppNotFound(
            f"isce.topsapp: {command[0]!r} is not an executable on PATH; install it or give "
            "its full path (e.g. 'apptainer exec isce2.sif topsApp.py')"
        )
    if len(command) == 1 and program.endswith(".py"):
        return _from_script(Path(program), "isce.topsapp", env, cache_file)
    full = (program, *command[1:])
    version = _cached_probe(full, env, cache_file, lambda: _banner_version(full, env))
    return TopsApp(command=full, version=version, origin="isce.topsapp")


def _from_script(script: Path, origin: str, env: Mapping[str, str],
                 cache_file: str | Path | None) -> TopsApp:  # fmt: skip
    """A topsApp.py file: find the interpreter that imports its ISCE, else run it as it is."""
    script = script.resolve()
    package = script.parent.parent  # <package>/applications/topsApp.py
    for python in _interpreters(script, package, env):
        probe_env = {**env, "PYTHONPATH": str(package.parent)}
        version = _cached_probe((python, str(script)), env, cache_file,
                                lambda p=python, e=probe_env: _import_version(p, e))  # fmt: skip
        if version:
            return TopsApp(
                command=(python, str(script)), version=version, origin=origin, python=python,
                isce_home=str(package), pythonpath=str(package.parent),
                path_prefix=(str(Path(python).parent), str(package / "applications")),
            )  # fmt: skip
    # not a Python ISCE install we can see into (a wrapper script, a stand-in): run it as is
    command = (str(script),)
    version = _cached_probe(command, env, cache_file, lambda: _banner_version(command, env))
    return TopsApp(command=command, version=version, origin=origin,
                   path_prefix=(str(script.parent),))  # fmt: skip


def _interpreters(script: Path, package: Path, env: Mapping[str, str]) -> list[str]:
    """Interpreters that may hold this ISCE: the script's own, the install prefix's, PATH's
    python3 outside the workflow's venv, the system's."""
    candidates: list[str] = []
    try:
        first = script.open("rb").readline().decode(errors="replace").strip()
    except OSError:
        first = ""
    if first.startswith("#!") and "/env" not in first.split()[0]:
        candidates.append(first[2:].split()[0])
    for parent in package.parents:  # <prefix>/lib/python3.X/site-packages/isce -> <prefix>/bin
        if parent.name == "lib":
            candidates.append(str(parent.parent / "bin" / "python3"))
            break
    venv = Path(sys.prefix).resolve()
    for folder in env.get("PATH", "").split(os.pathsep):
        python = Path(folder or ".") / "python3"
        if python.is_file() and venv not in python.resolve().parents:
            candidates.append(str(python))
    candidates.append("/usr/bin/python3")
    seen: list[str] = []
    for c in candidates:
        if c not in seen and Path(c).is_file() and os.access(c, os.X_OK):
            seen.append(c)
    return seen


def _import_version(python: str, env: Mapping[str, str]) -> str | None:
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [python, "-c", "import isce, sys; sys.stdout.write('VERSION=' + isce.__version__)"],
            env=dict(env), capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False,
            cwd="/",
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"VERSION=(\S+)", result.stdout)
    return match[1] if result.returncode == 0 and match else None


def _banner_version(command: Sequence[str], env: Mapping[str, str]) -> str | None:
    """`<command> --help` prints 'ISCE VERSION = x' (it exits 1 by design: read, don't judge)."""
    try:
        result = subprocess.run(  # noqa: S603 - argument list, no shell
            [*command, "--help"], env=dict(env), capture_output=True, text=True,
            timeout=PROBE_TIMEOUT_S, check=False, cwd="/",
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise TopsAppNotFound(
            f"{shlex.join(command)} could not be started ({exc}); check isce.topsapp"
        ) from None
    match = _BANNER_RE.search(result.stdout + result.stderr)
    return match[1] if match else None


def _fingerprint(command: Sequence[str]) -> list[Any]:
    """What identifies the program: each argument, and size + mtime of those that are files."""
    out: list[Any] = []
    for part in command:
        path = Path(part)
        try:
            stat = path.stat() if path.is_file() else None
        except OSError:
            stat = None
        out.append([part, stat.st_size, stat.st_mtime_ns] if stat else [part])
    return out


def _cached_probe(command: Sequence[str], env: Mapping[str, str], cache_file: str | Path | None,
                  probe: Any) -> str | None:  # fmt: skip
    key = json.dumps(_fingerprint(command))
    cache: dict[str, Any] = {}
    if cache_file:
        try:
            cache = json.loads(Path(cache_file).read_text())
        except (OSError, ValueError):
            cache = {}
        if key in cache:
            return cache[key]
    version = probe()
    if cache_file:
        cache[key] = version
        write_json(cache_file, cache, shared=True)  # ISCE jobs running side by side write it
    return version


# --- which scenes a version can process ---------------------------------------------------------


def needs_newer_isce(platform: str, orbit: int | None) -> str | None:
    """Why a scene needs ISCE2 >= MIN_VERSION, or None."""
    if platform == "S1D":
        return "Sentinel-1D (ISCE2 before 2.6.5 cannot read its annotation)"
    if platform == "S1C" and orbit is not None and orbit > S1C_ORBIT_CHANGE:
        return (
            f"Sentinel-1C after absolute orbit {S1C_ORBIT_CHANGE} (ISCE2 before 2.6.5 computes "
            "its track wrongly)"
        )
    return None


def incompatible_scenes(scenes: Iterable[Any], topsapp: TopsApp) -> list[str]:
    """'<granule>: <why>' for every scene this topsApp cannot process correctly."""
    if topsapp.recent:
        return []
    problems = []
    for scene in scenes:
        why = needs_newer_isce(scene.platform, scene.orbit)
        if why:
            problems.append(f"{scene.granule}: {why}")
    return problems


def compatibility_error(problems: Sequence[str], topsapp: TopsApp) -> str:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    version = topsapp.version or "of unknown version"
    return (
        f"{len(problems)} scene(s) need ISCE2 >= {MIN_VERSION}, but the topsApp found is "
        f"{version} ({topsapp.describe()}): {shown}. Fix: {HOW_TO_GET}, or remove these dates "
        "(pairs.explicit, dates)"
    )


def interpreter(topsapp: TopsApp) -> list[str] | None:
    """The Python that runs ISCE's own code for this topsApp (to write its saved state, which
    holds ISCE's classes): the build's interpreter; for a topsApp.py run as it is, the one its
    ``#!`` line names, or the ``python`` before it; None for another command (a container),
    whose interpreter the workflow cannot reach."""
    if topsapp.python:
        return [topsapp.python]
    command = topsapp.command
    if len(command) == 2 and command[1].endswith(".py") and Path(command[0]).name.startswith("python"):
        return [command[0]]
    if len(command) == 1 and command[0].endswith(".py"):
        try:
            first = Path(command[0]).open("rb").readline().decode(errors="replace").strip()
        except OSError:
            return None
        if first.startswith("#!") and "python" in first:
            return first[2:].split()
    return None


def to_record(topsapp: TopsApp) -> dict[str, Any]:
    return asdict(topsapp)


def conda_env_topsapp(env_file: str | Path) -> TopsApp:
    """``--sdm conda``: topsApp.py of the rules' conda env; its version is the file's pin."""
    text = Path(env_file).read_text()
    match = re.search(r"^\s*-\s*isce2\s*=+\s*([0-9.]+)", text, flags=re.M)
    return TopsApp(
        command=("topsApp.py",),
        version=match[1] if match else None,
        origin=f"conda env {Path(env_file).name} (--sdm conda; version as pinned there)",
    )


# Targets that stage or plan only: everything else ends in topsApp runs and needs ISCE2.
STAGING_TARGETS = frozenset(
    {"plan", "search", "stage", "preflight", "download_slc", "orbits", "aux_cal", "dem"}
)


def requires_isce(targets: Iterable[str]) -> bool:
    """Whether a run for these Snakemake targets (rule names or files) reaches topsApp."""
    targets = list(targets)
    if not targets:
        return True  # rule all
    for target in targets:
        if target in STAGING_TARGETS:
            continue
        parts = set(Path(target).parts)
        if len(parts) > 1 and not parts & {"work", "products"}:
            continue  # a file of the plan, the caches, the orbits or the DEM
        return True
    return False
