# Staging: SLC downloads (after one preflight), orbits and AUX_CAL per date, and the `stage`
# target. After `snakemake stage` on a node with internet, nothing else needs the network.
# Input functions are one-line lambdas over library helpers (snakemake --lint: no functions
# beside rules).
# The staging rules (search, preflight, downloads, orbits, AUX_CAL, DEM) have `retries: 0`:
# what a retry can fix (a dropped connection, HTTP 5xx, a timeout) is retried inside the
# library (network.retries); the rest (no login, no scenes, a host name that does not resolve,
# a DEM that does not cover) fails the same way again. The profiles' `retries` are for the
# ISCE groups (more memory and time per attempt).
from dinsar.aux_cal import platforms_needing_aux_cal
from dinsar.download import missing_downloads
from dinsar.orbits import orbit_params


# One credential check and one free-disk check before any download, as a checkpoint: a
# download whose zip is still missing waits for it (its input function asks for the
# checkpoint) without taking its report as an input file, so the set of inputs of a download
# never changes and a finished zip is never re-made because of it. A zip that is already
# there does not ask at all: Snakemake's checkpoint bookkeeping costs time per asking job.
# Its params are the zips still missing, so a run with new things to download checks again.
checkpoint preflight:
    input:
        after_search,
    output:
        report=ws("staging", "preflight.json"),
    log:
        ws("logs", "preflight", "preflight.log"),
    benchmark:
        ws("benchmarks", "preflight", "preflight.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        inventory=INVENTORY,
        missing=lambda w: missing_downloads(download_paths()),
        # no ISCE2, or one too old for some scenes, stops a run here (`stage` only warns)
        isce=lambda w: isce_status(),
    script:
        "../scripts/preflight.py"


# One scene: resumable, md5-verified, into the shared SLC cache. No URL in the params on
# purpose: a changed URL must not re-download a verified file.
rule download_slc:
    input:
        # no file: waiting for the checkpoint orders the jobs, an empty list adds no input
        preflight_done=lambda w: (
            Path(cache("slc", f"{w.granule}.zip")).is_file()
            or checkpoints.preflight.get()
        )
        and [],
    output:
        # update: Snakemake must not delete a zip that another workspace sharing the cache
        # finished after this DAG was built (download() then finds it verified and keeps it)
        zip=update(cache("slc", "{granule}.zip")),
    log:
        ws("logs", "download_slc", "{granule}.log"),
    benchmark:
        ws("benchmarks", "download_slc", "{granule}.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=1000,
        runtime=24 * 60,
    params:
        # a fixed path, not the scene's URL: a changed URL must not re-download a verified file
        inventory=INVENTORY["scenes"],
    script:
        "../scripts/download_slc.py"


# Burst mode: one burst's TIFF into the shared burst cache, keyed by its granule (areas and runs
# that share a burst share the download); resumable, and checked whole (no md5 is published)
# before it takes its name.
rule download_burst:
    input:
        preflight_done=lambda w: (
            Path(cache("bursts", f"{w.burst}.tiff")).is_file()
            or checkpoints.preflight.get()
        )
        and [],
    output:
        tiff=update(cache("bursts", "{burst}.tiff")),
    log:
        ws("logs", "download_burst", "{burst}.log"),
    benchmark:
        ws("benchmarks", "download_burst", "{burst}.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=1000,
        runtime=6 * 60,
    params:
        inventory=INVENTORY["scenes"],
    script:
        "../scripts/download_burst.py"


# Burst mode: a slice's metadata for one polarization (annotation and manifest), once for all
# of its bursts.
rule burst_metadata:
    input:
        preflight_done=lambda w: (
            Path(cache("bursts", f"{w.slice}_{w.pol}.xml")).is_file()
            or checkpoints.preflight.get()
        )
        and [],
    output:
        xml=update(cache("bursts", "{slice}_{pol}.xml")),
    log:
        ws("logs", "burst_metadata", "{slice}_{pol}.log"),
    benchmark:
        ws("benchmarks", "burst_metadata", "{slice}_{pol}.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=1000,
        runtime=60,
    params:
        inventory=INVENTORY["scenes"],
    script:
        "../scripts/burst_metadata.py"


# Burst mode: a date's SAFE, assembled with burst2safe from the bursts in the cache (no network),
# in the workspace under a name that says which bursts it holds. topsApp, the DEM extent and
# the checks read it as they read a downloaded slice.
rule burst_safe:
    input:
        tiffs=lambda w: [
            rules.download_burst.output.tiff.format(burst=b.granule)
            for b in stack().acquisition_of_safe(w.safe).scenes
        ],
        xml=lambda w: sorted(
            {
                rules.burst_metadata.output.xml.format(
                    slice=b.source, pol=b.polarization
                )
                for b in stack().acquisition_of_safe(w.safe).scenes
            }
        ),
    output:
        zip=ws("safe", "{safe}.zip"),
    log:
        ws("logs", "burst_safe", "{safe}.log"),
    benchmark:
        ws("benchmarks", "burst_safe", "{safe}.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        inventory=INVENTORY,
    script:
        "../scripts/burst_safe.py"


# The orbit file of every platform acquired on a date: POEORB, else RESORB (unless
# orbits.precise_only); the manifest says which (the products report it).
rule orbits:
    input:
        after_search,
        login=lambda w: after_login(ws("orbits", f"{w.date}.json")),
    output:
        manifest=ws("orbits", "{date}.json"),
    log:
        ws("logs", "orbits", "{date}.log"),
    benchmark:
        ws("benchmarks", "orbits", "{date}.tsv")
    retries: 0
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
        after_search,
        login=lambda w: after_login(ws("aux_cal", f"{w.date}.json")),
    output:
        manifest=ws("aux_cal", "{date}.json"),
    log:
        ws("logs", "aux_cal", "{date}.log"),
    benchmark:
        ws("benchmarks", "aux_cal", "{date}.tsv")
    retries: 0
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
        # SLC zips, or in burst mode the bursts and each date's SAFE made from them
        slc=lambda w: [str(p) for p in download_paths()]
        + [z for a in stack().used if a.date in stack().dates for z in safe_zips(a)],
        orbits=lambda w: [ws("orbits", f"{d}.json") for d in stack().dates],
        aux_cal=lambda w: [
            ws("aux_cal", f"{d}.json")
            for d in stack().dates
            if platforms_needing_aux_cal(stack().by_date[d])
        ],
        dem=lambda w: [ws("dem", track, "dem.json") for track in stack().tracks],
    localrule: True
