"""The ``dinsar`` command.

    dinsar run --roi WKT --start D --end D [--looks 7x19] [--dem-buffer 0.2] [--plan-only]
    dinsar run --config FILE       # the workflow on an existing config
    dinsar login [--config FILE]   # check the Earthdata login; at a terminal, ask and save it
    dinsar export WORKDIR OUTDIR   # topsApp run directory -> COG products + quicklook PNGs
    dinsar search --config FILE --save OUT  # a config's scenes, with state vectors, to plan
                                            # offline later (`inventory: OUT`)
    dinsar isce2 [--need]          # which topsApp.py the workflow runs, and its ISCE2 version
    dinsar schema                  # the configuration's JSON schema
    dinsar defaults                # config/config.yaml: every setting, its default, its meaning

``python -m dinsar ...`` is the same. A user error prints one line and exits 1, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import atomic_dir
from .credentials import CredentialsError
from .errors import ConfigError, DinsarError

log = logging.getLogger("dinsar.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's usage errors are user errors too: one line, exit 2 (argparse's code)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _reference_point(text: str) -> str | list[float] | None:
    value = text.strip().lower()
    if value in ("", "none", "null"):
        return None
    if value == "auto":
        return "auto"
    try:
        lat, lon = (float(v) for v in value.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 'auto', 'none' or LAT,LON (e.g. 46.39,11.65)"
        ) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"{text!r}: latitude or longitude out of range")
    return [lat, lon]


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be within 0..1")
    return value


def _wavelength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of metres") from None
    if not 0.005 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{value} m is not a radar wavelength")
    return value


def _looks(text: str) -> tuple[int, int]:
    from .runner import parse_looks

    try:
        return parse_looks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# dinsar COMMAND: (its line in `dinsar -h`, its description in `dinsar COMMAND -h`)
COMMANDS: dict[str, tuple[str, str]] = {
    "export": (
        "turn a topsApp run directory into COG products and quicklooks",
        "Turn a topsApp run directory (with merged/*.geo, reference/IW<n>.xml) into "
        "Cloud-Optimized GeoTIFFs (LOS displacement in metres, positive towards the satellite; "
        "phases; coherence and its mask; incidence and azimuth angles) and quicklook PNGs.",
    ),
    "search": (
        "search ASF for a config's scenes and save them for offline planning",
        "Search ASF for the scenes of a config (roi, dates, search settings) and "
        "save them with their state vectors, so that a plan made later from the saved search "
        "(`inventory: FILE` in the config) still has its perpendicular baselines. An asf_search "
        ".geojson() export has no state vectors: its plan cannot show baselines.",
    ),
    "isce2": (
        "which topsApp.py the workflow runs, and its ISCE2 version",
        "Find topsApp.py as the workflow does (isce.topsapp, the project's build, "
        "PATH, $ISCE_HOME) and print the command and its version.",
    ),
    "run": (
        "plan or run the whole workflow for an area and dates (the seed's main.py)",
        "Write the settings to <workspace>/dinsar_run.yaml and run the Snakemake "
        "workflow on them (or on --config FILE). With no Earthdata login and a terminal, asks "
        "for it first (see dinsar login).",
    ),
    "login": (
        "check the Earthdata login; at a terminal, ask for it and save it to ~/.netrc",
        "Check the Earthdata credentials the workflow would use against Earthdata "
        "Login. With none and a terminal, ask for the user and password (not shown), check "
        "them, and with your yes add them to ~/.netrc (mode 600).",
    ),
}


def _subcommand(sub: Any, name: str) -> argparse.ArgumentParser:
    help_text, description = COMMANDS[name]
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=description)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dinsar", description="dInSAR-Toolkit command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    export = _subcommand(sub, "export")
    export.add_argument("workdir", type=Path, help="topsApp run directory (holds merged/)")
    export.add_argument("outdir", type=Path, help="directory for the products (created)")
    export.add_argument("--reference-point", type=_reference_point, default=None,
                        metavar="auto|none|LAT,LON",
                        help="set the displacement to 0 at a point: 'auto' (most coherent area "
                        "of the largest connected component) or LAT,LON; default none")  # fmt: skip
    export.add_argument("--coherence-threshold", type=_threshold, default=0.3, metavar="T",
                        help="coherence mask threshold, 0..1 (default 0.3)")  # fmt: skip
    export.add_argument("--roi", default=None,
                        help="region outlined in the quicklooks: WKT, 'W,S,E,N' or a .geojson; "
                        "default: topsApp.xml's region of interest")  # fmt: skip
    export.add_argument("--wavelength", type=_wavelength, default=None, metavar="METRES",
                        help="wavelength to use ONLY if reference/IW<n>.xml lacks it "
                        "(Sentinel-1: 0.05546576)")  # fmt: skip
    export.add_argument("--no-quicklooks", action="store_true", help="write the rasters only")

    search = _subcommand(sub, "search")
    search.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="the config to search for (e.g. config/roi.yaml)")  # fmt: skip
    search.add_argument("--save", type=Path, required=True, metavar="FILE",
                        help="the inventory to write (GeoJSON, e.g. saved/roi.geojson)")  # fmt: skip

    isce2 = _subcommand(sub, "isce2")
    isce2.add_argument("--topsapp", default=None, metavar="COMMAND",
                       help="the isce.topsapp setting to check (default: none)")  # fmt: skip
    isce2.add_argument("--need", action="store_true",
                       help="exit 3 unless it is ISCE2 >= 2.6.5 (make builds ISCE2 then)")  # fmt: skip

    run = _subcommand(sub, "run")
    run.add_argument("--config", type=Path, default=None, metavar="FILE",
                     help="run an existing config file instead of the options below")  # fmt: skip
    run.add_argument("--roi", default=None, help='WKT polygon, e.g. "POLYGON ((129.2 42.2, ...))"')
    run.add_argument("--start", default=None, metavar="YYYY-MM-DD", help="first date")
    run.add_argument("--end", default=None, metavar="YYYY-MM-DD", help="last date")
    run.add_argument("--looks", type=_looks, default=None, metavar="AZxRG",
                     help="azimuth x range looks (default 7x19)")  # fmt: skip
    run.add_argument("--dem-buffer", type=float, default=None, metavar="DEG",
                     help="degrees of DEM around the processed bursts (default 0.2)")  # fmt: skip
    run.add_argument("--workspace", default=None, metavar="DIR",
                     help="where everything is written (default insar_workspace)")  # fmt: skip
    run.add_argument("--inventory", default=None, metavar="FILE",
                     help="a saved search instead of searching ASF (plans offline)")  # fmt: skip
    run.add_argument("--cores", default="all", metavar="N", help="CPU cores (default all)")
    run.add_argument("--plan-only", action="store_true",
                     help="search and plan only (writes <workspace>/plan/)")  # fmt: skip

    login = _subcommand(sub, "login")
    login.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="take download.edl_host, asf_auth_host and network.ca_bundle "
                       "from this config")  # fmt: skip

    sub.add_parser("schema", help="print the configuration's JSON schema")
    sub.add_parser("defaults", help="print config/config.yaml (every setting with its meaning)")
    return parser


def _roi(spec: str | None, workdir: Path) -> object | None:
    from shapely.geometry import box

    from .products import topsapp_roi_snwe
    from .roi import parse_roi

    if spec:
        parts = spec.strip().strip("[]").split(",")
        if len(parts) == 4 and not spec.strip().upper().startswith(("POLYGON", "MULTIPOLYGON")):
            try:
                return parse_roi([float(p) for p in parts], key="--roi")
            except ValueError:
                pass
        return parse_roi(spec, key="--roi")
    snwe = topsapp_roi_snwe(workdir)
    if snwe is None:
        return None
    south, north, west, east = snwe
    return box(west, south, east, north) if west < east and south < north else None


def cmd_export(args: argparse.Namespace) -> int:
    from .products import export_pair, pair_info_from_workdir

    roi = _roi(args.roi, args.workdir)
    info = pair_info_from_workdir(args.workdir) if args.workdir.is_dir() else None
    # everything goes to a temporary folder renamed to OUTDIR at the end: an error leaves
    # nothing behind (and an earlier OUTDIR as it was)
    with atomic_dir(args.outdir) as out:
        result = export_pair(
            args.workdir,
            out,
            pair_info=info,
            reference_point=args.reference_point,
            coherence_threshold=args.coherence_threshold,
            wavelength_fallback=args.wavelength,
        )
        if not args.no_quicklooks:
            kinds = ["wrapped_phase", "coherence"]
            if "los_displacement.tif" in result.files:
                kinds.insert(0, "displacement")
            from .quicklooks import QUICKLOOKS, make_quicklooks  # matplotlib: only when drawing

            make_quicklooks(out, {k: out / QUICKLOOKS[k] for k in kinds}, roi=roi, info=info)
    print(f"products written to {args.outdir}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .config import load_config_file
    from .inventory import group_acquisitions
    from .search import save_search

    scenes = save_search(load_config_file(args.config), args.save)
    dates = len(group_acquisitions(scenes))
    with_baselines = sum(s.baseline is not None for s in scenes)
    print(f"{len(scenes)} scene(s) on {dates} date(s) saved to {args.save}, "
          f"{with_baselines} with state vectors; plan offline with `inventory: {args.save}` "
          "in the config")  # fmt: skip
    return 0


def cmd_isce2(args: argparse.Namespace) -> int:
    import os

    from .topsapp import MIN_VERSION, TopsAppNotFound, find_topsapp

    try:
        found = find_topsapp(args.topsapp, os.environ)
    except TopsAppNotFound as exc:
        print(str(exc))
        return 3 if args.need else 0
    print(f"topsApp: {found.describe()}")
    if not found.recent:
        print(f"older than ISCE2 {MIN_VERSION}: it cannot read Sentinel-1D, and it gets Sentinel-1C "
              "tracks after absolute orbit 8018 wrong (`make isce2` builds 2.6.5)")
        return 3 if args.need else 0
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import runner

    one_line = (args.roi, args.start, args.end)
    if args.config is not None:
        if any(v is not None for v in (*one_line, args.looks, args.dem_buffer, args.workspace,
                                       args.inventory)):  # fmt: skip
            raise ConfigError("--config FILE runs that file as it is: put --roi, --start, --end "
                              "and the other settings in it, or leave out --config")  # fmt: skip
        options = None
    else:
        missing = [n for n, v in zip(("--roi", "--start", "--end"), one_line, strict=True) if not v]
        if missing:
            raise ConfigError(f"dinsar run needs {', '.join(missing)} (or --config FILE), e.g. "
                              'dinsar run --roi "POLYGON ((129.2 42.2, 129.3 42.2, 129.3 42.3, '
                              '129.2 42.3, 129.2 42.2))" --start 2025-12-20 --end 2026-01-10')  # fmt: skip
        options = runner.settings_from_options(
            args.roi, args.start, args.end, looks=args.looks, dem_buffer=args.dem_buffer,
            workspace=args.workspace, inventory=args.inventory,
        )  # fmt: skip
    plan = runner.prepare(args.config, options, cores=args.cores, plan_only=args.plan_only)
    print(f"settings: {plan.config_file}", flush=True)
    if not args.plan_only:
        # before Snakemake starts: its jobs have no terminal to ask at
        from .login import ensure_credentials, has_terminal

        cfg = plan.config
        try:
            ensure_credentials(cfg.download.edl_host, cfg.download.asf_auth_host,
                               cfg.network.ca_bundle)  # fmt: skip
        except CredentialsError:
            if has_terminal():
                raise  # asked and rejected or not saved: stop before anything starts
            # no terminal: a staged workspace needs no login; when a download needs one, the
            # workflow stops with the one-line "no Earthdata credentials found"
    code = runner.start(plan)
    if code == 0:
        print(runner.results_line(plan, args.plan_only))
    return code


def cmd_login(args: argparse.Namespace) -> int:
    from .config import load_config_file
    from .login import login_command

    if args.config is not None:
        cfg = load_config_file(args.config)
        edl, auth, ca = cfg.download.edl_host, cfg.download.asf_auth_host, cfg.network.ca_bundle
    else:
        from .config import Download

        defaults = Download()
        edl, auth, ca = defaults.edl_host, defaults.asf_auth_host, None
    print(login_command(edl, auth, ca))
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    from .config import defaults_yaml

    sys.stdout.write(defaults_yaml())
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from .logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(None, logging.DEBUG if args.verbose else logging.INFO)
    handlers = {"export": cmd_export, "search": cmd_search, "isce2": cmd_isce2,
                "schema": cmd_schema, "defaults": cmd_defaults, "run": cmd_run,
                "login": cmd_login}  # fmt: skip
    try:
        return handlers[args.command](args)
    except DinsarError as exc:
        print(f"dinsar: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # disk full, permission denied, read-only output: the user fixes those
        print(f"dinsar: error: {exc.strerror or exc} ({exc.filename or 'I/O'}); check the path, "
              "its permissions and the free space", file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("dinsar: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
