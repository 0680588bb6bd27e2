"""Running MintPy's ``smallbaselineApp.py`` as a program (MintPy is GPL-3.0: never imported).

The inputs MintPy loads are a folder of links ``<pair id> -> <pair's hand-off folder>``, so one
glob per file kind (``inputs/*/*_unw_phase.tif``) finds exactly the pairs of the run.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from ..atomic import atomic_path
from ..errors import DinsarError

log = logging.getLogger(__name__)

SMALLBASELINE = "smallbaselineApp.py"
INSTALL_HINT = "pip install -e '.[timeseries]' in the workflow's venv (make run installs it)"
OMP_THREADS = 2  # MintPy's numpy/scipy threads by default: a bounded share of the node
TAIL_LINES = 4  # of MintPy's output, in the error, when it has no traceback
MAX_CONTEXT = 300  # characters of one quoted line
# smallbaselineApp.py runs its steps in two spans that leave out "quick_overview": in MintPy 1.6.4
# that step plots a histogram of the triplets whose closure phase has a non-zero integer
# ambiguity with bins = the largest count, and raises when every triplet closes (a clean stack,
# or a small one: 4 dates give 1 or 2 triplets). Its two files (avgPhaseVelocity.h5,
# numTriNonzeroIntAmbiguity.h5) are an overview only: no later step reads them.
STEP_SPANS = (("--end", "reference_point"), ("--start", "correct_unwrap_error"))
IFG_WORDS = ("unw_phase", "corr")


class TimeseriesError(DinsarError):
    """The time series could not be made; the message names the cause and the fix."""


def mintpy_program(name: str = SMALLBASELINE) -> Path:
    """A MintPy program beside the running Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        raise TimeseriesError(f"MintPy's {name} is not installed: {INSTALL_HINT}")
    return Path(found)


def link_inputs(handoff_dirs: Mapping[str, Path], inputs_dir: Path) -> Path:
    """``inputs_dir/<pair id>`` -> each pair's hand-off folder (relative links, so a moved
    workspace still works); links of pairs no longer in the run are removed."""
    inputs_dir = Path(inputs_dir)
    inputs_dir.mkdir(parents=True, exist_ok=True)
    # MintPy's hyp3 loader takes any file whose absolute path holds one of these words for an
    # interferogram (the DEM and the angles too): they must not appear above the file names
    where = str(inputs_dir.resolve())
    for word in IFG_WORDS:
        if word in where:
            raise TimeseriesError(
                f"the time series folder {where} holds {word!r}, which MintPy's hyp3 loader takes "
                "for an interferogram in every file below it: choose a workspace path without it"
            )
    for pair_id in handoff_dirs:
        if any(word in pair_id for word in IFG_WORDS) or "/" in pair_id or pair_id in ("", ".", ".."):
            raise TimeseriesError(f"pair id {pair_id!r} cannot name an input folder of MintPy's")
    for entry in inputs_dir.iterdir():
        if entry.name not in handoff_dirs and (entry.is_symlink() or entry.name.endswith(".tmp")):
            log.info("removing the stale input %s", entry)
            entry.unlink()
    base = inputs_dir.resolve()
    for pair_id, target in sorted(handoff_dirs.items()):
        target = Path(target)
        if not target.is_dir():
            raise TimeseriesError(f"{target} (pair {pair_id}) is missing: export the pair first")
        relative = os.path.relpath(target.resolve(), base)
        link = inputs_dir / pair_id
        if link.is_symlink() and os.readlink(link) == relative:
            continue
        with atomic_path(link) as tmp:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(relative, target_is_directory=True)
    return inputs_dir


def _meaningful(lines: Sequence[str]) -> list[str]:
    """Lines that say something (no blank lines or separator rules)."""
    return [line.strip() for line in lines if line.strip() and set(line.strip()) - set("-=*#_ ")]


FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')


def failure_summary(lines: Sequence[str]) -> str:
    """What went wrong, in one line, from the end of MintPy's output: a Python traceback gives
    its exception, where it was raised and what MintPy printed last before it; otherwise the
    last lines."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if not starts:
        return " | ".join(_meaningful(lines)[-TAIL_LINES:]) or "no output"
    before, trace = lines[: starts[-1]], lines[starts[-1] :]
    exception = _meaningful(trace)[-1]
    frames = [m for m in (FRAME.search(line) for line in trace) if m]
    where = (f" in {Path(frames[-1]['path']).name} line {frames[-1]['line']} "
             f"({frames[-1]['function']})" if frames else "")  # fmt: skip
    context = _meaningful(before)[-1:] if before else []
    after = f" after: {context[0][:MAX_CONTEXT]}" if context else ""
    return f"{exception[:MAX_CONTEXT]}{where}{after}"


def run_smallbaseline(template: Path, work_dir: Path, log_path: Path, *,
                      threads: int = OMP_THREADS) -> None:  # fmt: skip
    """``smallbaselineApp.py <template> --work-dir <work_dir>`` (in the two spans of
    STEP_SPANS), its output in ``log_path`` (and at INFO); a failure raises
    :class:`TimeseriesError` naming the log. ``threads`` bounds MintPy's numerical threads (the
    job's share of the node)."""
    program = mintpy_program()
    work_dir, log_path = Path(work_dir), Path(log_path)
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    count = str(max(1, int(threads)))
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": count,
           "OPENBLAS_NUM_THREADS": count, "MKL_NUM_THREADS": count,
           "NUMEXPR_NUM_THREADS": count, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    base = [str(program), str(Path(template).resolve()), "--work-dir", str(work_dir.resolve())]
    with open(log_path, "w", encoding="utf-8") as out:
        for span in STEP_SPANS:
            _run(base + list(span), work_dir, env, out, log_path)


def _run(command: list[str], work_dir: Path, env: dict[str, str], out: IO[str],
         log_path: Path) -> None:  # fmt: skip
    log.info("running %s (output in %s)", " ".join(command), log_path)
    tail: collections.deque[str] = collections.deque(maxlen=200)
    out.write("$ " + " ".join(command) + "\n")
    out.flush()
    try:
        process = subprocess.Popen(command, cwd=work_dir, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace",
                                   bufsize=1)  # fmt: skip
    except OSError as error:
        raise TimeseriesError(f"cannot run {command[0]} ({error}): {INSTALL_HINT}") from error
    assert process.stdout is not None
    try:
        for line in process.stdout:
            out.write(line)
            out.flush()
            tail.append(line.rstrip())
            if line.strip():
                log.info("mintpy: %s", line.rstrip())
        returncode = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    if returncode != 0:
        raise TimeseriesError(
            f"MintPy's smallbaselineApp.py failed (exit {returncode}): "
            f"{failure_summary(list(tail))}; whole output in {log_path}"
        )
