# Stack summaries and the Snakemake HTML report (`snakemake --report report.html`: from the
# plan onwards, what exists; common.smk for_report).
#
# The report is self-contained: Snakemake 9 embeds its JavaScript/CSS from its own package and
# every figure as a data URI, so it opens offline. Items carry rst captions from report/.


report: "../report/workflow.rst"


rule stack_summary:
    input:
        unpack(stack_inputs),
    output:
        **stack_outputs(),
    log:
        ws("logs", "stack_summary", "stack_summary.log"),
    benchmark:
        ws("benchmarks", "stack_summary", "stack_summary.tsv")
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=30,
    params:
        roi=CFG.roi,
        coherence_threshold=CFG.products.coherence_threshold,
    script:
        "../scripts/stack_summary.py"


rule processing_report:
    input:
        unpack(processing_inputs),
    output:
        report(
            ws("products", "stack", "processing.html"),
            caption="../report/processing.rst",
            category="4. Processing",
            labels={"table": "parameters, orbits, pairs"},
        ),
    log:
        ws("logs", "processing_report", "processing_report.log"),
    benchmark:
        ws("benchmarks", "processing_report", "processing_report.tsv")
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings={
            "isce": CFG.isce.model_dump(),
            "products": CFG.products.model_dump(),
            "pairs": CFG.pairs.model_dump(),
            # mirror URLs are site details, not processing parameters; with dem.file the
            # source is not used (the "DEM used" table names the file)
            "dem": CFG.dem.model_dump(
                exclude={"tiles_url", "geoid"}
                | ({"source"} if CFG.dem.file else set())
            ),
            "orbits": CFG.orbits.model_dump(exclude={"asf_url", "aux_cal_url"}),
            "search": CFG.search.model_dump(exclude={"host"}),
            "roi": CFG.roi,
            "dates": [str(CFG.dates.start), str(CFG.dates.end)],
            "keep": CFG.keep,
            "timeseries": CFG.timeseries.model_dump(),
        },
    script:
        "../scripts/processing_report.py"


rule products:
    """Every pair's products and quicklooks, the stack summary and the processing table."""
    input:
        products_targets,
    localrule: True
