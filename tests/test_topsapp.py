"""Which topsApp runs: the config's command, the project's build, then PATH/ISCE_HOME; its version
from the build record, from `import isce`, or from the banner of `--help`; the environment it
runs in; and which scenes an ISCE2 older than 2.6.5 cannot process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dinsar.topsapp import (
    MIN_VERSION,
    TopsAppNotFound,
    builds_root,
    compatibility_error,
    conda_env_topsapp,
    find_topsapp,
    incompatible_scenes,
    needs_newer_isce,
    project_build,
    requires_isce,
    version_key,
)
from harness import environment

REPO = Path(__file__).resolve().parents[1]


def fake_isce(root: Path, version: str, shebang: str = "/usr/bin/env python3") -> Path:
    """An ISCE-like package: <root>/isce/__init__.py with a version, and applications/topsApp.py."""
    package = root / "isce"
    (package / "applications").mkdir(parents=True)
    (package / "__init__.py").write_text(f"__version__ = {version!r}\n")
    script = package / "applications" / "topsApp.py"
    script.write_text(f"#!{shebang}\nimport isce, sys\nprint('ran', sys.argv[1:])\n")
    script.chmod(0o755)
    return script


def fake_build(root: Path, version: str = "2.6.5") -> Path:
    """What envs/isce2/build.sh leaves: an install whose install.json is written last."""
    prefix = root / f"{version}-0123456789ab"
    script = fake_isce(prefix / "packages", version)
    (prefix / "bin").mkdir()
    (prefix / "install.json").write_text(json.dumps({
        "version": version, "python": sys.executable, "isce_home": str(script.parent.parent),
        "pythonpath": str(prefix / "packages"), "topsapp": str(script),
    }))  # fmt: skip
    return prefix


def banner_command(folder: Path, name: str, version: str) -> Path:
    """A command (a container wrapper, say) that prints ISCE's banner and counts its runs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{folder}/{name}.runs"\n'
        f'echo "ISCE VERSION = {version}, RELEASE_SVN_REVISION = ,RELEASE_DATE = 20260630"\n'
        "exit 1\n"
    )
    path.chmod(0o755)
    return path


def test_version_key() -> None:
    assert version_key("2.6.5") > version_key("2.6.4") > version_key("2.5.3")
    assert version_key("2.6.10") > version_key("2.6.5")
    assert version_key(MIN_VERSION) == (2, 6, 5)


def test_the_project_build_comes_before_an_older_topsapp_on_path(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    prefix = fake_build(builds)
    old = fake_isce(tmp_path / "conda" / "site-packages", "2.6.4", shebang=sys.executable)
    env = {"PATH": str(old.parent), "DINSAR_ISCE2_ROOT": str(builds), "HOME": str(tmp_path)}
    found = find_topsapp(None, env)
    assert found.version == "2.6.5" and found.origin.startswith("project build")
    assert found.command == (sys.executable, str(prefix / "packages/isce/applications/topsApp.py"))
    assert found.recent
    run_env = found.environment({"PATH": "/usr/bin", "PYTHONPATH": "/x"}, threads=3)
    # ISCE's own scripts (#!/usr/bin/env python3) must find the build's interpreter first
    assert run_env["PATH"].split(os.pathsep)[:2] == [str(prefix / "bin"),
                                                     str(prefix / "packages/isce/applications")]  # fmt: skip
    assert run_env["PYTHONPATH"] == os.pathsep.join([str(prefix / "packages"), "/x"])
    assert run_env["ISCE_HOME"] == str(prefix / "packages/isce")
    assert (run_env["OMP_NUM_THREADS"], run_env["OMP_WAIT_POLICY"]) == ("3", "PASSIVE")
    # without a build, the older one is used, and says so
    env["DINSAR_ISCE2_ROOT"] = str(tmp_path / "none")
    older = find_topsapp(None, env)
    assert older.version == "2.6.4" and older.origin == "PATH" and not older.recent
    assert older.python == sys.executable  # its own interpreter, not whatever python3 is first
    assert "2.6.4" in older.describe() and "PATH" in older.describe()


def test_an_unfinished_build_is_not_used(tmp_path: Path) -> None:
    prefix = fake_build(tmp_path / "builds")
    (prefix / "install.json").unlink()  # an interrupted build writes no install.json
    env = {"PATH": str(tmp_path), "DINSAR_ISCE2_ROOT": str(tmp_path / "builds")}
    with pytest.raises(TopsAppNotFound, match="no ISCE2"):
        find_topsapp(None, env)


def test_topsapp_from_isce_home(tmp_path: Path) -> None:
    """A conda-style install: ISCE_HOME is set, its applications are not on PATH."""
    script = fake_isce(tmp_path / "env" / "lib" / "python3.11" / "site-packages", "2.6.5",
                       shebang=sys.executable)  # fmt: skip
    env = {"PATH": "/usr/bin", "ISCE_HOME": str(script.parent.parent),
           "DINSAR_ISCE2_ROOT": str(tmp_path / "none")}  # fmt: skip
    found = find_topsapp(None, env)
    assert found.origin == "ISCE_HOME" and found.version == "2.6.5"
    assert found.command[-1] == str(script)
    result = subprocess.run([*found.command, "topsApp.xml"], env=found.environment(env, 1),
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "ran ['topsApp.xml']" in result.stdout  # its ISCE imports with the environment given


def test_a_configured_command_is_probed_once_and_cached(tmp_path: Path) -> None:
    wrapper = banner_command(tmp_path / "bin", "apptainer", "2.6.5")
    cache = tmp_path / "ws" / ".dinsar" / "topsapp.json"
    env = {"PATH": str(tmp_path / "bin"), "DINSAR_ISCE2_ROOT": str(fake_build(tmp_path / "b").parent)}
    setting = "apptainer exec --bind '/data dir' isce2.sif topsApp.py"
    found = find_topsapp(setting, env, cache)
    assert found.command == (str(wrapper), "exec", "--bind", "/data dir", "isce2.sif", "topsApp.py")
    assert found.origin == "isce.topsapp" and found.version == "2.6.5"  # the setting wins
    again = find_topsapp([str(wrapper), "exec", "--bind", "/data dir", "isce2.sif", "topsApp.py"],
                         env, cache)  # fmt: skip
    assert again.version == "2.6.5"
    assert (tmp_path / "bin" / "apptainer.runs").read_text().count("run") == 1  # cached
    # a changed program is probed again
    banner_command(tmp_path / "bin", "apptainer", "2.7.0")
    assert find_topsapp(setting, env, cache).version == "2.7.0"


def test_a_command_without_a_banner_has_an_unknown_version(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "mytops"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexit 1\n")
    tool.chmod(0o755)
    found = find_topsapp("mytops --flag", {"PATH": str(tool.parent)})
    assert found.version is None and not found.recent
    assert "version unknown" in found.describe()


def test_not_found_says_how_to_get_it(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "DINSAR_ISCE2_ROOT": str(tmp_path / "none")}
    with pytest.raises(TopsAppNotFound) as err:
        find_topsapp(None, env)
    assert "make isce2" in str(err.value) and "isce.topsapp" in str(err.value)
    with pytest.raises(TopsAppNotFound, match="'singularity' is not an executable"):
        find_topsapp("singularity exec isce.sif topsApp.py", env)
    with pytest.raises(TopsAppNotFound, match="isce.topsapp is empty"):
        find_topsapp([""][:0] or " ", env)


def scene(platform: str, orbit: int | None, granule: str = "G") -> SimpleNamespace:
    return SimpleNamespace(platform=platform, orbit=orbit, granule=granule)


def test_which_scenes_need_2_6_5() -> None:
    assert needs_newer_isce("S1A", 60000) is None
    assert needs_newer_isce("S1B", 30000) is None
    assert needs_newer_isce("S1C", 8018) is None
    assert "orbit 8018" in needs_newer_isce("S1C", 8019)
    assert "Sentinel-1D" in needs_newer_isce("S1D", 1200)
    old = SimpleNamespace(version="2.6.4", recent=False, describe=lambda: "topsApp.py (2.6.4, PATH)")
    scenes = [scene("S1A", 1), scene("S1C", 9000, "S1C_X"), scene("S1D", 10, "S1D_Y")]
    problems = incompatible_scenes(scenes, old)
    assert [p.split(":")[0] for p in problems] == ["S1C_X", "S1D_Y"]
    message = compatibility_error(problems, old)
    assert "2 scene(s) need ISCE2 >= 2.6.5" in message and "make isce2" in message
    assert "S1C_X" in message and "S1D_Y" in message
    recent = SimpleNamespace(version="2.6.5", recent=True)
    assert incompatible_scenes(scenes, recent) == []


def test_staging_targets_do_not_need_isce() -> None:
    assert requires_isce([])  # rule all
    assert requires_isce(["isce"]) and requires_isce(["timeseries"])
    assert requires_isce(["ws/products/20210401_20210413/los_displacement.tif"])
    assert not requires_isce(["stage"]) and not requires_isce(["plan", "stage"])
    assert not requires_isce(["ws/orbits/20210401.json", "ws/dem/168_DESC/dem.json"])


def test_builds_root_is_the_build_scripts(tmp_path: Path) -> None:
    """envs/isce2/build.sh and the library agree on where builds live (one default, two languages)."""
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    prefix = subprocess.run(["bash", str(REPO / "envs/isce2/build.sh"), "--prefix"], env=env,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert Path(prefix).parent == builds_root(env)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    prefix = subprocess.run(["bash", str(REPO / "envs/isce2/build.sh"), "--prefix"], env=env,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert Path(prefix).parent == builds_root(env) == tmp_path / "xdg/dinsar-toolkit/isce2"


def test_conda_env_version_is_its_pin() -> None:
    found = conda_env_topsapp(REPO / "envs" / "isce2.yaml")
    assert found.version == "2.6.4" and not found.recent
    assert "--sdm conda" in found.origin


def test_build_script_refuses_a_source_that_is_not_the_release(tmp_path) -> None:
    bogus = tmp_path / "isce2-2.6.5.tar.gz"
    import tarfile

    member = tmp_path / "README.md"
    member.write_text("not ISCE2\n")
    with tarfile.open(bogus, "w:gz") as tar:
        tar.add(member, arcname="isce2-2.6.5/README.md")
    env = {**environment.clean(), "DINSAR_ISCE2_ROOT": str(tmp_path / "builds"),
           "ISCE2_SOURCE": str(bogus),
           "ISCE2_SKIP_PACKAGES": "1", "ISCE2_PYTHON": sys.executable}  # fmt: skip
    result = subprocess.run(["bash", str(REPO / "envs/isce2/build.sh")], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    if "cannot import numpy and osgeo.gdal" in result.stderr or "not found" in result.stderr:
        pytest.skip("the build tools are not installed here: " + result.stderr.strip())
    assert result.returncode == 1
    assert "is not the ISCE2 2.6.5 release" in result.stderr
    assert "archive sha256" in result.stderr and "content digest" in result.stderr
    assert not (tmp_path / "builds").exists() or not list((tmp_path / "builds").glob("*/install.json"))


def test_the_vendored_release_matches_the_build_scripts_digests(shared_dir) -> None:
    import hashlib
    import importlib.util
    import re

    text = (REPO / "envs/isce2/build.sh").read_text()
    archive_sha = re.search(r"^ARCHIVE_SHA256=(\w+)", text, re.M)[1]
    content_sha = re.search(r"^CONTENT_SHA256=(\w+)", text, re.M)[1]
    vendored = shared_dir / "vendor" / "isce2-2.6.5.tar.gz"
    assert hashlib.sha256(vendored.read_bytes()).hexdigest() == archive_sha
    spec = importlib.util.spec_from_file_location("source_digest", REPO / "envs/isce2/source_digest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.tree_digest(str(vendored)) == content_sha


def test_a_second_make_isce2_does_nothing() -> None:
    """With the project's build present (CI builds it first), `make isce2` returns at once."""
    if project_build(os.environ) is None:
        pytest.skip("no project ISCE2 build here (make isce2)")
    result = subprocess.run(["make", "-s", "isce2"], cwd=REPO, capture_output=True, text=True,
                            check=False, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "already built" in result.stdout and "nothing to do" in result.stdout
