"""The plan's figures: what they show (texts, axes, outlines), read from the figure itself."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import box

from dinsar import plots
from dinsar.inventory import Acquisition
from dinsar.pairs import Pair, days_between

DATES = ["20160901", "20161007", "20161031", "20161124"]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each figure as it is saved (the PNG is still written)."""
    figures: list[Any] = []
    original = plots.write_figure

    def spy(fig: Any, path: Any, **kwargs: Any) -> Path:
        figures.append(fig)
        return original(fig, path, **kwargs)

    monkeypatch.setattr(plots, "write_figure", spy)
    return figures


def texts(fig: Any) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def network(bperp: float) -> tuple[list[Pair], dict[str, dict[str, float]]]:
    steps = zip(DATES, DATES[1:], strict=False)
    pairs = [Pair("13_DESC", a, b, days_between(a, b), bperp) for a, b in steps]
    return pairs, {"13_DESC": {d: bperp * i for i, d in enumerate(DATES)}}


def test_network_without_baselines_says_so_and_has_no_bperp_axis(tmp_path: Path, drawn) -> None:
    plots.plot_network(*network(math.nan), tmp_path / "network.png")
    (fig,) = drawn
    ax = fig.axes[0]
    assert "No perpendicular baselines" in texts(fig)
    assert "dinsar search --config CONFIG --save FILE" in texts(fig)
    assert not ax.yaxis.get_visible() and ax.get_ylabel() == ""
    assert "baselines unknown" in ax.get_title()
    assert (tmp_path / "network.png").stat().st_size > 0


def test_network_with_baselines_has_a_bperp_axis(tmp_path: Path, drawn) -> None:
    plots.plot_network(*network(12.0), tmp_path / "network.png")
    ax = drawn[0].axes[0]
    assert ax.yaxis.get_visible() and ax.get_ylabel() == "perpendicular baseline [m]"
    assert "No perpendicular baselines" not in texts(drawn[0])
    ys = sorted({y for line in ax.get_lines() for y in line.get_ydata()})
    assert ys == [0.0, 12.0, 24.0, 36.0]  # the pairs are drawn at their dates' baselines


def test_coverage_shows_each_dates_coverage_and_swath(tmp_path: Path, drawn) -> None:
    roi = box(0.0, 0.0, 1.0, 1.0)
    acquisitions = [
        Acquisition("13_DESC", "20160901", [], coverage=0.55, used=False, reason="too little"),
        Acquisition("13_DESC", "20161007", [], coverage=0.97, used=True),
    ]
    swaths = {"20160901": box(-0.45, -1, 0.55, 2), "20161007": box(-0.1, -1, 1.2, 2)}
    footprints = pytest.MonkeyPatch()
    footprints.setattr(Acquisition, "footprint", property(lambda a: swaths[a.date]))
    try:
        plots.plot_coverage(roi, acquisitions, tmp_path / "coverage.png", min_coverage=0.9)
    finally:
        footprints.undo()
    (fig,) = drawn
    ax, bars = fig.axes
    assert "1 of 2 dates used" in ax.get_title()
    # every date's swath outline, and the ROI
    outlines = {tuple(sorted(set(line.get_xdata()))) for line in ax.get_lines()}
    assert {(-0.45, 0.55), (-0.1, 1.2), (0.0, 1.0)} <= outlines
    # every date's coverage, in order, with the threshold
    top_down = sorted(bars.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in top_down] == ["20160901  13_DESC", "20161007  13_DESC"]
    assert "55 % dropped" in texts(fig) and "97 %" in texts(fig)
    assert [round(p.get_width()) for p in bars.patches] == [55, 97]
    assert any("min_roi_coverage 90%" in t.get_text() for t in bars.get_legend().get_texts())
