# ISCE2 topsApp per pair: topsApp.xml, the step-group rules made from one table, and cleanup.
#
# Each group is one `topsApp.py topsApp.xml --start=X --end=Y` in work/<pair>/ (one row of
# dinsar.isce_run.GROUPS: a rule isce_<name>). A group's input is the previous group's
# PICKLE/<step>.xml only: one file per job keeps `snakemake -n` fast for thousands of pairs,
# and a job whose outputs are missing is re-made whenever it is needed. Its outputs are ISCE's
# PICKLE/<last step> (+ .xml) and the merged/ files the group really writes, so a failed
# group reruns alone: a failure at unwrap resumes at unwrap. keep: products adds isce_cleanup,
# which deletes the intermediates once geocode succeeded; Snakemake does not ask for missing
# intermediate files while the geocoded products are up to date, so `snakemake -n` stays quiet,
# and if an earlier group must run again, its missing PICKLE state sends it back to preprocess.
# Later groups have higher priority, so a started pair is finished (and cleaned) before
# another one is begun: the peak disk use stays near `cores / threads` pairs of intermediates.
from dinsar.config import xml_settings
from dinsar.errors import DinsarError
from dinsar.isce_run import (
    CLEANUP_RECORD,
    GROUPS,
    PAIR_INFO,
    geocode_products,
    group_outputs,
    pair_inputs,
    pair_params,
)

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
        if files
    }
    for g in GROUPS
}


rule topsapp_xml:
    input:
        unpack(
            lambda wc: pair_inputs(
                *stack().pair_acquisitions(wc.pair),
                slc=safe_zip_pattern(),
                orbits=rules.orbits.output.manifest,
                dem=rules.dem.output.manifest,
                aux_cal=rules.aux_cal.output.manifest,
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
        # only the settings that change topsApp.xml: another of them re-makes it (and the pair)
        isce=xml_settings(CFG.isce),
        geocode=ISCE_GEOCODE,
        roi=CFG.roi,
        polarization=CFG.search.polarization,
        margin_seconds=CFG.orbits.margin_seconds,
    script:
        "../scripts/topsapp_xml.py"


rule geometry_xml:
    """topsApp.xml of a reference date's geometry job: the date as its own secondary."""
    input:
        unpack(
            lambda wc: pair_inputs(
                *[stack().reference_acquisition(wc.date)] * 2,
                slc=safe_zip_pattern(),
                orbits=rules.orbits.output.manifest,
                dem=rules.dem.output.manifest,
                aux_cal=rules.aux_cal.output.manifest,
            )
        ),
    output:
        xml=os.path.join(GEOMETRY_WORK, "topsApp.xml"),
        info=os.path.join(GEOMETRY_WORK, PAIR_INFO),
    log:
        ws("logs", "geometry_xml", "{date}.log"),
    benchmark:
        ws("benchmarks", "geometry_xml", "{date}.tsv")
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        pair=lambda wc: pair_params(*[stack().reference_acquisition(wc.date)] * 2),
        isce=xml_settings(CFG.isce),
        geocode=ISCE_GEOCODE,
        roi=CFG.roi,
        polarization=CFG.search.polarization,
        margin_seconds=CFG.orbits.margin_seconds,
    script:
        "../scripts/topsapp_xml.py"


rule isce_geometry:
    """topo once for a reference date; its pairs take the files (isce.reuse_geometry)."""
    input:
        xml=rules.geometry_xml.output.xml,
    output:
        state=os.path.join(GEOMETRY_WORK, "PICKLE", "topo"),
        metadata=os.path.join(GEOMETRY_WORK, "PICKLE", "topo.xml"),
    log:
        ws("logs", "isce_geometry", "{date}.log"),
    benchmark:
        ws("benchmarks", "isce_geometry", "{date}.tsv")
    priority: 2
    retries: 1
    conda:
        "../envs/isce2.yaml"
    threads: CFG.isce.threads
    resources:
        mem_mb=isce_memory("topo"),
        runtime=isce_runtime("preprocess", "topo"),
    params:
        workdir=isce_workdir,
        topsapp=CFG.isce.topsapp,
        probe_cache=TOPSAPP_PROBE_CACHE,
        use_builds=not CONDA_ISCE,
        margin_seconds=CFG.orbits.margin_seconds,
    script:
        "../scripts/isce_geometry.py"


for index, group in enumerate(GROUPS):

    rule:
        name:
            group.rule
        input:
            # topsApp.xml names the zips, orbits and DEM: a new one of those re-makes it
            previous=(
                ISCE_OUT[GROUPS[index - 1].name]["metadata"]
                if index
                else rules.topsapp_xml.output.xml
            ),
            geometry=reference_geometry if group.name == "topo" else [],
        output:
            **ISCE_OUT[group.name],
        log:
            ws("logs", group.rule, "{pair}.log"),
        benchmark:
            ws("benchmarks", group.rule, "{pair}.tsv")
        priority: index + 1
        retries: 1
        conda:
            "../envs/isce2.yaml"
        threads: CFG.isce.threads if group.threaded else 1
        resources:
            mem_mb=isce_memory(group.name),
            runtime=isce_runtime(group.name),
        params:
            group=group.name,
            workdir=lambda wc: ws("work", wc.pair),
            topsapp=CFG.isce.topsapp,
            probe_cache=TOPSAPP_PROBE_CACHE,
            # --sdm conda: the rule's conda env provides topsApp, not the project's build
            use_builds=not CONDA_ISCE,
            margin_seconds=CFG.orbits.margin_seconds,
        script:
            "../scripts/isce_step.py"


rule isce_cleanup:
    input:
        geocoded=ISCE_OUT["geocode"]["metadata"],
    output:
        ws("work", "{pair}", CLEANUP_RECORD),
    log:
        ws("logs", "isce_cleanup", "{pair}.log"),
    benchmark:
        ws("benchmarks", "isce_cleanup", "{pair}.tsv")
    priority: len(GROUPS) + 1
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


rule isce_geometry_cleanup:
    """keep: products: a geometry job's files go once every pair of its date is geocoded."""
    input:
        geocoded=lambda wc: expand(
            ISCE_OUT["geocode"]["metadata"],
            pair=[p.id for p in stack().pairs_by_reference[wc.date]],
        ),
    output:
        os.path.join(GEOMETRY_WORK, CLEANUP_RECORD),
    log:
        ws("logs", "isce_geometry_cleanup", "{date}.log"),
    benchmark:
        ws("benchmarks", "isce_geometry_cleanup", "{date}.tsv")
    priority: len(GROUPS) + 1
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        workdir=isce_workdir,
        keep=CFG.keep,
        geo=lambda wc, input: input.geocoded,
    script:
        "../scripts/isce_cleanup.py"


rule isce:
    """Every pair through topsApp: geocoded products (and cleanup under keep: products)."""
    input:
        lambda wc: expand(
            [
                *ISCE_OUT["geocode"]["products"],
                *(rules.isce_cleanup.output if CFG.keep == "products" else []),
            ],
            pair=pair_ids(),
        ),
        lambda wc: geometry_cleanups(),
    localrule: True
