"""Files that are never seen half-written: the one writer every output of ours goes through.

The bytes go to ``<name>.tmp`` beside the target and are renamed over it when complete (a
rename within a folder is atomic), so a killed run leaves either the old file or the new one,
and at most a ``.tmp`` that the next write replaces. Downloads are the one exception: their
``.part`` is resumable (dinsar.download).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def tmp_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + TMP_SUFFIX)


@contextlib.contextmanager
def atomic_path(path: str | Path, shared: bool = False) -> Iterator[Path]:
    """Yield the temporary path to write; rename it over ``path`` when the block succeeds.

    shared: several processes may write ``path`` at once (a cache): each gets a temporary name
    of its own. Otherwise (one job per output, as Snakemake guarantees) the name is fixed, so
    a write after a killed one replaces the leftover.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}") if shared else tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; rename it to ``path`` when the block succeeds.

    An error removes the temporary folder and leaves ``path`` as it was (absent, or the
    previous complete folder). A folder already at ``path`` is replaced as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = tmp_path(path), path.with_name(path.name + ".old" + TMP_SUFFIX)
    for leftover in (tmp, old):  # a killed run's
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any, shared: bool = False, **dumps: Any) -> Path:
    """JSON (indent 1 unless given) written atomically."""
    with atomic_path(path, shared) as tmp:
        tmp.write_text(json.dumps(data, **{"indent": 1, **dumps}), encoding="utf-8")
    return Path(path)


def write_figure(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """A matplotlib figure saved atomically (the format from the final name's suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **savefig)
    return Path(path)
