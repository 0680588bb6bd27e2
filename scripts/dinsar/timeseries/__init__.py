"""A track's time series with MintPy (GPL-3.0, run as a program in its own process, never
imported): ``template`` (the smallbaselineApp template), ``run`` (the input links and the
MintPy run), ``export`` (its HDF5 outputs to our COGs, history.csv and timeseries.json) and
``orchestrate`` (all of it, and the figures of ``dinsar.quicklooks.timeseries``)."""

from .export import TimeseriesResult, export_timeseries
from .orchestrate import run_timeseries
from .run import TimeseriesError, link_inputs, mintpy_program, run_smallbaseline
from .template import mintpy_template

__all__ = [
    "TimeseriesError",
    "TimeseriesResult",
    "export_timeseries",
    "link_inputs",
    "mintpy_program",
    "mintpy_template",
    "run_smallbaseline",
    "run_timeseries",
]
