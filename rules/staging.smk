# Staging: SLC downloads (after one preflight), orbits and AUX_CAL per date, and the `stage`
# target. After `snakemake stage` on a node with internet, nothing else needs the network.
# Input functions are one-line lambdas over library helpers (snakemake --lint: no functions
# beside rules).
from dinsar.aux_cal import platforms_needing_aux_cal
from dinsar.download import preflight_key
from dinsar.orbits import orbit_params

# The inventory is an input of the staging jobs, but a new search must not make Snakemake
# download 200 GB again: `ancient` ignores its modification time.
INVENTORY = ancient(ws("inventory", "scenes.geojson"))
DATES_TABLE = ancient(ws("inventory", "dates.csv"))


# One credential check and one free-disk check before any SLC byte, as a checkpoint: every
# download waits for it (its input function asks for the checkpoint) without taking its
# report as an input file. Its params are the zips still missing, so every run that has
# something to download repeats it, and nothing else re-runs because of that. (A file
# dependency, even ancient(), would make Snakemake 9 re-run - and first delete - every
# existing zip whenever the preflight runs again or its report is missing.)
checkpoint preflight:
    input:
        scenes=INVENTORY,
        dates=DATES_TABLE,
    output:
        report=ws("staging", "preflight.json"),
    log:
        ws("logs", "preflight", "preflight.log"),
    benchmark:
        ws("benchmarks", "preflight", "preflight.tsv")
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        missing=lambda w: preflight_key(
            [Path(cache("slc", f"{g}.zip")) for g in stack().granules],
            Path(ws("staging", "preflight.json")),
        ),
    script:
        "../scripts/preflight.py"


# One scene: resumable, md5-verified, into the shared SLC cache. No params on purpose: a
# changed URL or chunk size must not re-download a verified file.
rule download_slc:
    input:
        scenes=INVENTORY,
        # no file: waiting for the checkpoint orders the jobs, an empty list adds no input
        preflight_done=lambda w: checkpoints.preflight.get() and [],
    output:
        zip=cache("slc", "{granule}.zip"),
    log:
        ws("logs", "download_slc", "{granule}.log"),
    benchmark:
        ws("benchmarks", "download_slc", "{granule}.tsv")
    retries: 2
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=1000,
        runtime=24 * 60,
    script:
        "../scripts/download_slc.py"


# The orbit file of every platform acquired on a date: POEORB, else RESORB (unless
# orbits.precise_only); the manifest says which (the products report it).
rule orbits:
    input:
        scenes=INVENTORY,
    output:
        manifest=ws("orbits", "{date}.json"),
    log:
        ws("logs", "orbits", "{date}.log"),
    benchmark:
        ws("benchmarks", "orbits", "{date}.tsv")
    retries: 1
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        orbits=lambda w: orbit_params(w.date, stack().by_date.get(w.date, []), CFG),
    script:
        "../scripts/orbits.py"


# AUX_CAL, only for dates whose scenes were processed with IPF 002.36.
rule aux_cal:
    input:
        scenes=INVENTORY,
    output:
        manifest=ws("aux_cal", "{date}.json"),
    log:
        ws("logs", "aux_cal", "{date}.log"),
    benchmark:
        ws("benchmarks", "aux_cal", "{date}.tsv")
    retries: 1
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        platforms=lambda w: platforms_needing_aux_cal(stack().by_date.get(w.date, [])),
    script:
        "../scripts/aux_cal.py"


# Everything the current plan reads from the network; run it on a login node, and the rest
# of the workflow runs without internet. A second run transfers nothing.
rule stage:
    input:
        slc=lambda w: [cache("slc", f"{g}.zip") for g in stack().granules],
        orbits=lambda w: [ws("orbits", f"{d}.json") for d in stack().dates],
        aux_cal=lambda w: [
            ws("aux_cal", f"{d}.json")
            for d in stack().dates
            if platforms_needing_aux_cal(stack().by_date[d])
        ],
        dem=lambda w: [ws("dem", track, "dem.json") for track in stack().tracks],
    localrule: True
