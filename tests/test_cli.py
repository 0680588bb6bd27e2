"""The `dinsar` command: export of topsApp run directories, the schema, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402
import rasterio  # noqa: E402

from dinsar.cli import main  # noqa: E402
from dinsar.config import json_schema  # noqa: E402
from dinsar.errors import DinsarError  # noqa: E402
from harness import environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUICKLOOKS = {"quicklook_displacement.png", "quicklook_wrapped_phase.png", "quicklook_coherence.png"}


def dinsar(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m dinsar ...` in a fresh interpreter, as a user would run it."""
    env = {**environment.clean(), "PYTHONPATH": str(REPO / "scripts")}
    return subprocess.run([sys.executable, "-m", "dinsar", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_export_the_real_topsapp_run(shared_dir: Path, tmp_path: Path) -> None:
    result = dinsar("export", str(shared_dir / "fixtures" / "isce2-run-range-increase"),
                    str(tmp_path / "out"), "--reference-point", "none")  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert QUICKLOOKS <= names and "los_displacement.tif" in names and "metadata.json" in names
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["pair"]["track"] == "168_DESC"
    # the quicklook's colour limit keeps the real bump's peak (-1.86 cm), which the 99.5th
    # percentile alone clipped at 1.6 cm
    from dinsar import quicklooks

    shown = quicklooks.read_decimated(tmp_path / "out" / "los_displacement.tif").data
    peak = float(np.nanmax(np.abs(shown)))
    assert quicklooks.robust_symmetric_limit(shown, quicklooks.ROBUST_PERCENTILE) < 0.9 * peak
    assert quicklooks.displacement_scale(shown)[0] >= peak


def test_export_a_synthetic_run_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = synthetic.write_run(tmp_path / "work")
    code = main(["export", str(run.workdir), str(tmp_path / "out"), "--reference-point",
                 "auto", "--coherence-threshold", "0.5"])  # fmt: skip
    assert code == 0
    assert "products written" in capsys.readouterr().out
    with rasterio.open(tmp_path / "out" / "coherence_mask.tif") as src:
        assert src.tags()["COHERENCE_THRESHOLD"] == "0.5"
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["reference_point"]["method"] == "auto"
    assert QUICKLOOKS <= {p.name for p in (tmp_path / "out").iterdir()}


def test_console_script_is_declared() -> None:
    script = Path(sys.executable).with_name("dinsar")
    if not script.exists():
        pytest.skip("package not installed in this environment (pip install -e .)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "dinsar" in result.stdout


def test_schema_prints_the_config_schema() -> None:
    result = dinsar("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads(json.dumps(json_schema()))


def test_a_directory_without_geocoded_products(tmp_path: Path) -> None:
    (tmp_path / "run" / "merged").mkdir(parents=True)
    assert_one_line_error(dinsar("export", str(tmp_path / "run"), str(tmp_path / "out")),
                          "no geocoded products", "geocode")  # fmt: skip


def test_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line(*run_main(capsys, "export", str(tmp_path / "nowhere"), str(tmp_path / "out")),
                    "not a directory")  # fmt: skip


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI in-process (fast); returns (exit code, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def assert_one_line(code: int, stderr: str, *words: str) -> None:
    assert code != 0 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_missing_wavelength_fails_unless_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = synthetic.write_run(tmp_path / "run", wavelength=None)
    assert_one_line(*run_main(capsys, "export", str(run.workdir), str(tmp_path / "out")),
                    "radarwavelength", "--wavelength")  # fmt: skip
    code, stderr = run_main(capsys, "export", str(run.workdir), str(tmp_path / "out"),
                            "--wavelength", "0.05546576", "--no-quicklooks")  # fmt: skip
    assert code == 0, stderr
    assert "fallback" in stderr  # said loudly, in the log


def test_bad_arguments_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "o")
    assert_one_line(*run_main(capsys, "export", str(tmp_path), out, "--reference-point", "north"),
                    "--reference-point")  # fmt: skip
    assert_one_line(*run_main(capsys, "export", str(tmp_path), out, "--coherence-threshold", "2"),
                    "0..1")  # fmt: skip
    assert_one_line(*run_main(capsys, "frobnicate"), "invalid choice")


def test_unwritable_output_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = synthetic.write_run(tmp_path / "run")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_one_line(*run_main(capsys, "export", str(run.workdir), str(blocker / "out")), "error")


def test_a_failed_export_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The products are written, then the quicklooks fail: no OUTDIR, no temporary folder."""
    import dinsar.quicklooks

    def fail(*args: object, **kwargs: object) -> None:
        raise DinsarError("quicklooks failed")

    run = synthetic.write_run(tmp_path / "run")
    monkeypatch.setattr(dinsar.quicklooks, "make_quicklooks", fail)
    assert_one_line(*run_main(capsys, "export", str(run.workdir), str(tmp_path / "out")),
                    "quicklooks failed")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # an earlier complete export stays as it was
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metadata.json").write_text("{}")
    assert_one_line(*run_main(capsys, "export", str(run.workdir), str(tmp_path / "out")),
                    "quicklooks failed")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["metadata.json"]
    # and a successful export replaces it as a whole
    monkeypatch.undo()
    assert run_main(capsys, "export", str(run.workdir), str(tmp_path / "out"))[0] == 0
    assert QUICKLOOKS <= {p.name for p in (tmp_path / "out").iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]


def test_reference_point_outside_the_area(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = synthetic.write_run(tmp_path / "run")
    assert_one_line(*run_main(capsys, "export", str(run.workdir), str(tmp_path / "out"),
                              "--reference-point", "10,10"), "outside the geocoded area")  # fmt: skip


# --- the topsApp test double's output ---------------------------------------------------------

DOUBLE_DIR = REPO / "tests" / "topsapp_double"
PRODUCT = "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4"
# the real run's injected bump (+2 cm range increase), which the double reproduces unfiltered
BUMP = {"DINSAR_DOUBLE_DEFO_LAT": "46.394133", "DINSAR_DOUBLE_DEFO_LON": "11.648143",
        "DINSAR_DOUBLE_DEFO_AMP_M": "0.02", "DINSAR_DOUBLE_DEFO_SIGMA_KM": "1.3"}  # fmt: skip


def test_export_the_topsapp_double_output(shared_dir: Path, tmp_path: Path) -> None:
    """`dinsar export` on what the topsApp double writes, set up like the real run."""
    import shutil
    import zipfile

    import numpy as np

    if not (DOUBLE_DIR / "topsApp.py").is_file():
        pytest.skip("the topsApp test double is not in this checkout")
    real = shared_dir / "fixtures" / "isce2-run-range-increase"
    for name in ("ref", "sec"):
        with zipfile.ZipFile(shared_dir / "fixtures" / "xarray-sentinel" / f"{PRODUCT}.zip") as zf:
            zf.extractall(tmp_path / name)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(real / "dem", run / "dem")
    text = (real / "topsApp.xml").read_text()
    (run / "topsApp.xml").write_text(text.replace("'ref/", "'../ref/").replace("'sec/", "'../sec/"))
    path = os.pathsep.join([str(DOUBLE_DIR), str(Path(sys.executable).parent), os.environ["PATH"]])
    made = subprocess.run(["topsApp.py", "topsApp.xml", "--start=startup", "--end=geocode"],
                          cwd=run, env={**environment.clean(), "PATH": path, **BUMP},
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr

    result = dinsar("export", str(run), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert QUICKLOOKS <= {p.name for p in (tmp_path / "out").iterdir()}
    with rasterio.open(tmp_path / "out" / "los_displacement.tif") as src:
        disp = src.read(1)
    with rasterio.open(run / "merged" / "filt_topophase.unw.geo.vrt") as src, rasterio.open(
        tmp_path / "out" / "coherence.tif"
    ) as cog:
        assert src.transform == cog.transform
    # +2 cm of range increase (away from the satellite), no filter in the double: about -2 cm
    assert np.nanmin(disp) == pytest.approx(-0.02, rel=0.05)
    assert abs(np.nanmedian(disp[:20])) < 1e-4


def test_export_roi_takes_a_bbox_with_or_without_brackets(tmp_path: Path) -> None:
    from dinsar.cli import _roi

    for spec in ("11.5,46.3,11.7,46.5", "[11.5, 46.3, 11.7, 46.5]"):
        assert _roi(spec, tmp_path).bounds == (11.5, 46.3, 11.7, 46.5)
