# dInSAR-Toolkit: area + dates -> geocoded Sentinel-1 displacement maps with ISCE2 topsApp.
#   snakemake -n --configfile config/roi.yaml          # the plan
#   snakemake --cores 12 --configfile config/roi.yaml  # the run
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/search.smk"
include: "rules/plan.smk"
include: "rules/staging.smk"
include: "rules/dem.smk"
include: "rules/isce.smk"
include: "rules/products.smk"
include: "rules/report.smk"
include: "rules/timeseries.smk"


rule all:
    default_target: True
    input:
        all_outputs,
