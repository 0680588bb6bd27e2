"""What a clone without the recorded data (../shared) can run, as the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from harness import REPO_ROOT, SHARED_ENV_VAR, environment

README = (REPO_ROOT / "README.md").read_text()


def test_readme_says_where_the_test_data_come_from() -> None:
    section = README[README.index("**Where the test data come from.**"):]
    for text in ("`../shared/fixtures/`", "real public data", "../shared/fixtures/SOURCES.md",
                 f"`${SHARED_ENV_VAR}`", "**A clone without `../shared`.**",
                 '-m "not shared"', "shared fixture data not found at"):  # fmt: skip
        assert text in section, text


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The suite in a subprocess, with $DINSAR_SHARED at an empty folder (no recorded data)."""
    empty = tmp_path / "no-shared"
    empty.mkdir(exist_ok=True)
    env = {**environment.clean(), SHARED_ENV_VAR: str(empty)}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'run'}", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_a_clone_without_the_recorded_data(tmp_path: Path) -> None:
    # without the marker: a test that reads the data stops with the one line the README quotes
    needs = run_pytest(tmp_path, "tests/test_pairs.py", "-x")
    assert needs.returncode != 0
    assert "shared fixture data not found at" in needs.stdout + needs.stderr
    # with it: every test of these files that does not read the data runs and passes; those of
    # test_orbits.py read the recorded EOFs through the orbit bucket or the SAFE factory
    free = run_pytest(tmp_path, "-m", "not shared", "tests/test_pairs.py", "tests/test_orbits.py",
                      "tests/test_plots.py")  # fmt: skip
    output = free.stdout + free.stderr
    assert free.returncode == 0, output[-4000:]
    passed = re.search(r"\b(\d+) passed\b", output)
    deselected = re.search(r"\b(\d+) deselected\b", output)
    assert passed and deselected, output[-2000:]
    assert int(passed.group(1)) >= 3 + 3  # test_plots and the orbit tests without data
    assert int(deselected.group(1)) >= 9 + 10  # all of test_pairs, most of test_orbits
