"""Logging set-up for rule scripts and the CLI.

Our messages go to the job's log file and to stderr. Third-party loggers (asf_search, ISCE's
own logging config, urllib3) are kept at WARNING so they cannot drown or replace ours.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("asf_search", "urllib3", "requests", "matplotlib", "rasterio", "fiona", "PIL", "isce")


def configure_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("dinsar").setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def error_to_log_files(message: str, name: str = "dinsar") -> None:
    """Write an ERROR line into the log files only (stderr gets its own one line)."""
    record = logging.getLogger(name).makeRecord(name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
