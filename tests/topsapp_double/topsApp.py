#!/usr/bin/env python3
"""A stand-in for ISCE2's topsApp.py, for tests only (put this folder on PATH).

It reads topsApp.xml like ISCE (dbl_config), checks inputs like ISCE's preprocess/verifyDEM
(dbl_sentinel), runs the step machinery with ISCE's command-line semantics, and writes each
step's files in ISCE's formats (dbl_steps) with a synthetic deformation (dbl_geometry). It does
not import the workflow's library: it is an independent implementation of ISCE's behaviour.

Command line, as Application.py parses it:
    topsApp.py [file.xml ...] [--steps] [--start=<step>] [--end=<step>] [--dostep=<step>] [--next]
The '=' is required: '--start topo' leaves 'topo' as a stray argument (TypeError, exit 1).
Without any step option all steps run and no PICKLE is written.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dbl_config import IsceExit, Settings, log_error, read_inputs  # noqa: E402
from dbl_steps import STEPS, Run  # noqa: E402

STEP_OPTIONS = ("--steps", "--start", "--end", "--dostep", "--next")


def parse_args(argv: list[str]) -> tuple[list[str], dict[str, str | None]]:
    files: list[str] = []
    options: dict[str, str | None] = {}
    for arg in argv:
        if arg.startswith("--"):
            key, _, value = arg.partition("=")
            options[key] = value if "=" in arg else None
        elif arg.endswith(".xml"):
            files.append(arg)
        elif "=" in arg:
            continue  # component.property=value: not used by the workflow
        else:
            raise TypeError(f"The argument {arg} is neither an input file nor a sequence object.param=val")
    return files, options


def main(argv: list[str]) -> int:
    files, options = parse_args(argv)
    if "--help" in options:
        # DINSAR_DOUBLE_HOLD_AT=help: the version probe (while the Snakefile is read) waits,
        # after writing its pid into the file DINSAR_DOUBLE_HOLD_NOTE names
        if os.environ.get("DINSAR_DOUBLE_HOLD_AT") == "help":
            Path(os.environ["DINSAR_DOUBLE_HOLD_NOTE"]).write_text(f"holding in --help (pid {os.getpid()})\n")
            time.sleep(600)
        # the banner real topsApp prints (the workflow reads the version from it); like the
        # real one, --help exits with status 1
        version = os.environ.get("DINSAR_DOUBLE_VERSION", "2.6.5")
        print(f"ISCE VERSION = {version}, RELEASE_SVN_REVISION = ,RELEASE_DATE = 20260630")
        print("topsApp.py (test double) steps:\n" + "\n".join(f"  {s}" for s in STEPS))
        return 1
    settings = Settings(read_inputs(files))
    run = Run(settings, Path.cwd())
    step_mode = any(o in options for o in STEP_OPTIONS)
    if not step_mode:
        for step in STEPS:
            run.run(step)
        return 0
    start, end = STEPS[0], STEPS[-1]
    if "--dostep" in options:
        start = end = options["--dostep"] or ""
    if options.get("--start"):
        start = options["--start"] or ""
    if options.get("--end"):
        end = options["--end"] or ""
    if "--next" in options:
        pickles = sorted((Path("PICKLE")).glob("*"), key=lambda p: p.stat().st_mtime)
        done = [p.name for p in pickles if p.name in STEPS]
        start = end = STEPS[STEPS.index(done[-1]) + 1] if done else STEPS[0]
    for name, value in (("start", start), ("end", end)):
        if value not in STEPS:
            print(f"ERROR: {name}={value} is not one of the named steps")
            return 1
    first, last = STEPS.index(start), STEPS.index(end)
    if first > last:
        print(f"ERROR: start={start} is after end={end}")
        return 1
    if first > 0:
        run.load(STEPS[first - 1])
    for step in STEPS[first : last + 1]:
        run.run(step)
        run.dump(step)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except IsceExit as exc:
        log_error(str(exc))
        sys.exit(exc.code)
    except Exception:  # noqa: BLE001 - like an uncaught exception in ISCE: traceback, exit 1
        traceback.print_exc()
        sys.exit(1)
