"""dInSAR-Toolkit library: the logic behind the Snakemake rules.

It never imports snakemake, so every module can be used and tested on its own.
"""

__version__ = "0.1.0"
