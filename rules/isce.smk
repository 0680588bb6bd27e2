# ISCE2 topsApp per pair: topsApp.xml, seven resumable step groups, and the disk policy.
#
# Each group is one `topsApp.py topsApp.xml --start=X --end=Y` in work/<pair>/. A group's input is
# the previous group's PICKLE/<step>.xml only: one file per job keeps `snakemake -n` fast for
# thousands of pairs, and a job whose outputs are missing is re-made whenever it is needed. Its outputs are
# ISCE's PICKLE/<last step> (+ .xml) and the merged/ files the group really writes, so a failed
# group reruns alone: a failure at unwrap resumes at unwrap. keep: products adds isce_cleanup,
# which deletes the intermediates once geocode succeeded; Snakemake does not ask for missing
# intermediate files while the geocoded products are up to date, so `snakemake -n` stays quiet,
# and if an earlier group must run again, its missing PICKLE state sends it back to preprocess.
# Later groups have higher priority, so a started pair is finished (and cleaned) before
# another one is begun: the peak disk use stays near `cores / threads` pairs of intermediates.
# The pair-level helpers live in dinsar.isce_run (pair_inputs, pair_params, pair_targets).
import math

from dinsar.errors import DinsarError
from dinsar.isce_run import (
    CLEANUP_RECORD,
    GROUPS,
    PAIR_INFO,
    geocode_products,
    group_outputs,
    memory_mb,
    pair_bursts,
    pair_inputs,
    pair_params,
    pair_targets,
    runtime_min,
)
from dinsar.plan import bursts_and_swaths
from dinsar.roi import parse_roi

try:
    ISCE_GEOCODE = geocode_products(
        CFG.isce.geocode_list,
        unwrap=CFG.isce.unwrap,
        unwrapper=CFG.isce.unwrapper,
        ionosphere=CFG.isce.ionosphere,
        looks=(CFG.isce.range_looks, CFG.isce.azimuth_looks),
        # the default list names unwrapped products; only a list the user wrote must all exist
        strict="geocode_list" in CFG.isce.model_fields_set,
    )
except DinsarError as exc:
    print(f"dInSAR-Toolkit: {exc}", file=sys.stderr)
    sys.exit(1)

# what topsApp.xml depends on (a change regenerates it, and reruns the pair)
ISCE_XML_SETTINGS = CFG.isce.model_dump(exclude={"threads", "topsapp", "min_free_gb"})
# declared outputs of each step group: {group: {"state"|"metadata"|"products": [paths]}}
ISCE_OUT = {
    g.name: {
        part: [ws("work", "{pair}", rel) for rel in files]
        for part, files in group_outputs(
            g.name,
            unwrap=CFG.isce.unwrap,
            unwrapper=CFG.isce.unwrapper,
            geocode=ISCE_GEOCODE,
        ).items()
    }
    for g in GROUPS
}
# bursts per pair before its topsApp.xml exists (resources in a dry run): from the ROI
ISCE_BURSTS_ESTIMATE = math.prod(bursts_and_swaths(parse_roi(CFG.roi)))
ISCE_LOOKS = (CFG.isce.range_looks, CFG.isce.azimuth_looks)


rule topsapp_xml:
    input:
        unpack(
            lambda wc: pair_inputs(
                *stack().pair_acquisitions(wc.pair), ws=ws, cache=cache
            )
        ),
    output:
        xml=ws("work", "{pair}", "topsApp.xml"),
        info=ws("work", "{pair}", PAIR_INFO),
    log:
        ws("logs", "topsapp_xml", "{pair}.log"),
    benchmark:
        ws("benchmarks", "topsapp_xml", "{pair}.tsv")
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        pair=lambda wc: pair_params(*stack().pair_acquisitions(wc.pair)),
        isce=ISCE_XML_SETTINGS,
        geocode=ISCE_GEOCODE,
        roi=CFG.roi,
        polarization=CFG.search.polarization,
        margin_seconds=CFG.orbits.margin_seconds,
    script:
        "../scripts/topsapp_xml.py"


rule isce_preprocess:
    input:
        # topsApp.xml names the zips, orbits and DEM: a new one of those re-makes it
        xml=ws("work", "{pair}", "topsApp.xml"),
    output:
        state=ISCE_OUT["preprocess"]["state"],
        metadata=ISCE_OUT["preprocess"]["metadata"],
    log:
        ws("logs", "isce_preprocess", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_preprocess", "{pair}.tsv")
    priority: 1
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "preprocess",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "preprocess",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="preprocess",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
        margin_seconds=CFG.orbits.margin_seconds,
    script:
        "../scripts/isce_step.py"


rule isce_topo:
    input:
        previous=rules.isce_preprocess.output.metadata,
    output:
        state=ISCE_OUT["topo"]["state"],
        metadata=ISCE_OUT["topo"]["metadata"],
    log:
        ws("logs", "isce_topo", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_topo", "{pair}.tsv")
    priority: 2
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: CFG.isce.threads
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "topo",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "topo",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="topo",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
    script:
        "../scripts/isce_step.py"


rule isce_coregistration:
    input:
        previous=rules.isce_topo.output.metadata,
    output:
        state=ISCE_OUT["coregistration"]["state"],
        metadata=ISCE_OUT["coregistration"]["metadata"],
    log:
        ws("logs", "isce_coregistration", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_coregistration", "{pair}.tsv")
    priority: 3
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: CFG.isce.threads
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "coregistration",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "coregistration",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="coregistration",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
    script:
        "../scripts/isce_step.py"


rule isce_interferogram:
    input:
        previous=rules.isce_coregistration.output.metadata,
    output:
        ISCE_OUT["interferogram"]["products"],
        state=ISCE_OUT["interferogram"]["state"],
        metadata=ISCE_OUT["interferogram"]["metadata"],
    log:
        ws("logs", "isce_interferogram", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_interferogram", "{pair}.tsv")
    priority: 4
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: CFG.isce.threads
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "interferogram",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "interferogram",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="interferogram",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
    script:
        "../scripts/isce_step.py"


rule isce_filter:
    input:
        previous=rules.isce_interferogram.output.metadata,
    output:
        ISCE_OUT["filter"]["products"],
        state=ISCE_OUT["filter"]["state"],
        metadata=ISCE_OUT["filter"]["metadata"],
    log:
        ws("logs", "isce_filter", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_filter", "{pair}.tsv")
    priority: 5
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "filter",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "filter",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="filter",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
    script:
        "../scripts/isce_step.py"


rule isce_unwrap:
    input:
        previous=rules.isce_filter.output.metadata,
    output:
        ISCE_OUT["unwrap"]["products"],
        state=ISCE_OUT["unwrap"]["state"],
        metadata=ISCE_OUT["unwrap"]["metadata"],
    log:
        ws("logs", "isce_unwrap", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_unwrap", "{pair}.tsv")
    priority: 6
    retries: 1
    conda:
        "../envs/isce2.yaml"
    # SNAPHU as topsApp runs it is single-threaded
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "unwrap",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "unwrap",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="unwrap",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
    script:
        "../scripts/isce_step.py"


rule isce_geocode:
    input:
        previous=rules.isce_unwrap.output.metadata,
    output:
        geo=ISCE_OUT["geocode"]["products"],
        metadata=ISCE_OUT["geocode"]["metadata"],
    log:
        ws("logs", "isce_geocode", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_geocode", "{pair}.tsv")
    priority: 7
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: CFG.isce.threads
    resources:
        mem_mb=lambda wc, attempt: memory_mb(
            "geocode",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            attempt,
        ),
        runtime=lambda wc, threads, attempt: runtime_min(
            "geocode",
            pair_bursts(ws("work", wc.pair, PAIR_INFO), ISCE_BURSTS_ESTIMATE),
            *ISCE_LOOKS,
            threads,
            attempt,
        ),
    params:
        group="geocode",
        workdir=lambda wc: ws("work", wc.pair),
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        # --sdm conda: the rule's conda env provides topsApp, not the project's build
        use_builds=not CONDA_ISCE,
    script:
        "../scripts/isce_step.py"


rule isce_cleanup:
    input:
        geocoded=rules.isce_geocode.output.metadata,
    output:
        ws("work", "{pair}", CLEANUP_RECORD),
    log:
        ws("logs", "isce_cleanup", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_cleanup", "{pair}.tsv")
    priority: 8
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        workdir=lambda wc: ws("work", wc.pair),
        keep=CFG.keep,
        geo=lambda wc: [f.format(pair=wc.pair) for f in ISCE_OUT["geocode"]["products"]],
    script:
        "../scripts/isce_cleanup.py"


rule isce:
    """Every pair through topsApp: geocoded products (and cleanup under keep: products)."""
    input:
        lambda wc: pair_targets(
            pair_ids(),
            ws,
            geocode=ISCE_GEOCODE,
            unwrap=CFG.isce.unwrap,
            unwrapper=CFG.isce.unwrapper,
            keep=CFG.keep,
        ),
    localrule: True
