# Stack summaries and the Snakemake HTML report (`snakemake --report report.html products`).
#
# The report is self-contained: Snakemake 9 embeds its JavaScript/CSS from its own package and
# every figure as a data URI, so it opens offline. Items carry rst captions from report/.


report: "../report/workflow.rst"


def stack_inputs(wildcards):
    pairs = pair_ids()
    files = {
        "metadata": [ws("products", p, "metadata.json") for p in pairs],
        "pairs": ws("plan", "pairs.csv"),
    }
    if "los_displacement" in PRODUCT_FILES:
        files["displacement"] = [
            ws("products", p, "los_displacement.tif") for p in pairs
        ]
    return files


def stack_outputs():
    outputs = {
        "network": report(
            ws("products", "stack", "network_coherence.png"),
            caption="../report/stack_network.rst",
            category="3. Stack",
            labels={"figure": "pair network by coherence"},
        ),
        "coherence": report(
            ws("products", "stack", "mean_coherence.png"),
            caption="../report/stack_coherence.rst",
            category="3. Stack",
            labels={"figure": "mean coherence per pair"},
        ),
        "table": ws("products", "stack", "pairs_summary.csv"),
    }
    if "los_displacement" in PRODUCT_FILES:
        outputs["grid"] = report(
            ws("products", "stack", "displacement_grid.png"),
            caption="../report/stack_displacement_grid.rst",
            category="3. Stack",
            labels={"figure": "displacement of every pair"},
        )
    return outputs


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


def processing_inputs(wildcards):
    return {
        "orbits": [ws("orbits", f"{d}.json") for d in stack().dates],
        "summary": ws("products", "stack", "pairs_summary.csv"),
    }


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
            "dem": CFG.dem.model_dump(exclude={"tiles_url"}),
            "orbits": CFG.orbits.model_dump(exclude={"asf_url"}),
            "search": CFG.search.model_dump(exclude={"host"}),
            "roi": CFG.roi,
            "dates": [str(CFG.dates.start), str(CFG.dates.end)],
            "keep": CFG.keep,
        },
    script:
        "../scripts/processing_report.py"


def products_targets(wildcards=None):
    """Everything issue 5 adds to `rule all`: pair products, stack summaries, the report table."""
    return (
        pair_products()
        + list(rules.stack_summary.output)
        + list(rules.processing_report.output)
    )


rule products:
    """Every pair's products and quicklooks, the stack summary and the processing table."""
    input:
        products_targets,
    localrule: True
