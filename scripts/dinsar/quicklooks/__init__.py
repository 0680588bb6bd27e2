"""Figures of the products and the stack report's pages.

Modules: ``figure`` (what every figure shares: headless matplotlib, decimated reads of the
COGs' overviews, colour limits, the map frame, saving), ``pair`` (a pair's quicklook PNGs),
``stack`` (the stack's figures), ``table`` (the stack's table of pairs) and ``report``
(``processing.html``). The names below are the package's interface.
"""

from .figure import (
    QUICKLOOK_PIXELS,
    ROBUST_PERCENTILE,
    Decimated,
    displacement_scale,
    displacement_units,
    peak_keeping_limit,
    read_decimated,
    robust_symmetric_limit,
)
from .pair import QUICKLOOKS, make_quicklooks, plot_coherence, plot_displacement, plot_wrapped_phase
from .report import processing_html
from .stack import (
    GRID_PANEL_PIXELS,
    date_positions,
    plot_coherence_network,
    plot_displacement_grid,
    plot_mean_coherence,
)
from .table import StackPair, load_stack_pairs, read_stack_table, write_stack_table

__all__ = [
    "GRID_PANEL_PIXELS",
    "QUICKLOOKS",
    "QUICKLOOK_PIXELS",
    "ROBUST_PERCENTILE",
    "Decimated",
    "StackPair",
    "date_positions",
    "displacement_scale",
    "displacement_units",
    "load_stack_pairs",
    "make_quicklooks",
    "plot_coherence",
    "plot_coherence_network",
    "plot_displacement",
    "plot_displacement_grid",
    "plot_mean_coherence",
    "peak_keeping_limit",
    "plot_wrapped_phase",
    "processing_html",
    "read_decimated",
    "read_stack_table",
    "robust_symmetric_limit",
    "write_stack_table",
]
