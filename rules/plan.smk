# The plan: scenes and pairs tables, network and coverage figures, a summary. Nothing heavy runs.


rule plan:
    input:
        after_search,
    output:
        scenes=ws("plan", "scenes.csv"),
        pairs=ws("plan", "pairs.csv"),
        network=report(
            ws("plan", "network.png"),
            caption="../report/network.rst",
            category="1. Plan",
            labels={"figure": "pair network"},
        ),
        coverage=report(
            ws("plan", "coverage.png"),
            caption="../report/coverage.rst",
            category="1. Plan",
            labels={"figure": "coverage of the area by each date"},
        ),
        summary=ws("plan", "summary.txt"),
    log:
        ws("logs", "plan", "plan.log"),
    benchmark:
        ws("benchmarks", "plan", "plan.tsv")
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        inventory=INVENTORY,
        # a new search result re-makes the plan
        digest=lambda w: inventory_digest(),
        pairs=CFG.pairs.model_dump(),
        keep=CFG.keep,
        # the plan's time-series line (and with true, its stop) follows this setting
        timeseries_enabled=CFG.timeseries.enabled,
        # which topsApp runs, and whether it can process these scenes
        isce=lambda w: isce_status(for_run=True),
    script:
        "../scripts/plan.py"
