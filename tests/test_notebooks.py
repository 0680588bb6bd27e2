"""The notebooks in examples/: stored without outputs, thin (they call the library and the
CLI's functions, define nothing), and executed here with nbclient against the offline harness
and the topsApp test double, one stage after the other on one small workspace.

Each notebook's `parameters` cell is kept and followed by the test's values (the config path,
as papermill does); the service hosts come from that config and the Earthdata login from the
HOME's .netrc, as for the workflow: nothing in a notebook names a host.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from fixture_scenes import TEST_ROI
from harness.pipeline import serve_window, user_setup
from workflow_runner import REPO, write_config

EXAMPLES = REPO / "examples"
STAGES = ["01_search_and_plan.ipynb", "02_staging_orbits_dem.ipynb",
          "03_run_and_monitor.ipynb", "04_explore_products.ipynb"]  # fmt: skip
WHOLE = "00_whole_pipeline.ipynb"
START, END = "2016-10-07", "2016-10-31"  # two dates, one pair
PAIR = "20161007_20161031"


def notebooks() -> list[Path]:
    return sorted(EXAMPLES.glob("*.ipynb"))


def test_one_notebook_per_stage_plus_the_whole_pipeline() -> None:
    assert [p.name for p in notebooks()] == sorted([WHOLE, *STAGES])


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_stored_without_outputs_and_without_logic(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    # nbformat 4.5 wants an id on every cell (a warning now, an error in later versions)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert all(cell.get("id") for cell in raw["cells"]), f"{path.name}: a cell has no id"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])], "no parameters cell"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, path.name
        source = cell.source
        assert "def " not in source and "class " not in source, source  # logic lives in dinsar
        for host in ("https://", "http://", "localhost", "127.0.0.1", "earthdata.nasa.gov"):
            assert host not in source, f"{path.name} names a host: {source}"


def execute(name: str, cwd: Path, **parameters: object) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n# the test's values\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})  # fmt: skip
    client.execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def images_in(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


def test_the_notebooks_run_stage_by_stage_then_the_whole_pipeline(
    tmp_path, monkeypatch, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle,
    shared_dir,
) -> None:  # fmt: skip
    services = serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                            dem_tiles=dem_tiles, https_server=https_server,
                            shared_dir=shared_dir)  # fmt: skip
    user = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    # the kernel and the Snakemake it starts get the user's HOME (.netrc) and the double on PATH
    for name in ("HOME", "PATH", "DINSAR_ISCE2_ROOT", "ISCE_HOME"):
        monkeypatch.setenv(name, user.env[name])
    config = str(write_config(tmp_path, user.config, "myarea.yaml"))
    cwd = tmp_path / "notebooks"
    cwd.mkdir()
    ws = user.workspace

    planned = execute(STAGES[0], cwd, CONFIG=config)
    assert "pairs: 1" in text_of(planned) and images_in(planned) == 2
    staged = execute(STAGES[1], cwd, CONFIG=config)
    out = text_of(staged)
    assert f"Earthdata user {earthdata.user[0]!r}" in out and "POEORB" in out
    assert (ws / "dem" / "13_DESC" / "dem.json").is_file()
    ran = execute(STAGES[2], cwd, CONFIG=config, CORES="2")
    assert "usage.json" in text_of(ran)
    assert (ws / "products" / PAIR / "los_displacement.tif").is_file()
    explored = execute(STAGES[3], cwd, CONFIG=config)
    assert images_in(explored) >= 3 + 1 + 1  # quicklooks, the stack figures, the profile

    whole = execute(WHOLE, cwd, ROI_WKT=TEST_ROI, START_DATE=START, END_DATE=END,
                    WORKSPACE=str(ws), SITE_CONFIG=config, CORES="2")  # fmt: skip
    assert f"products: {ws / 'products'}" in text_of(whole)
    assert (ws / "dinsar_run.yaml").is_file() and images_in(whole) >= 2
    for secret in user.secrets:
        for notebook in (planned, staged, ran, explored, whole):
            assert secret not in nbformat.writes(notebook)
