# The plan: scenes and pairs tables, network and coverage figures, a summary. Nothing heavy runs.


rule plan:
    input:
        scenes=ws("inventory", "scenes.geojson"),
        dates=ws("inventory", "dates.csv"),
    output:
        scenes=ws("plan", "scenes.csv"),
        pairs=ws("plan", "pairs.csv"),
        network=report(
            ws("plan", "network.png"),
            caption="../report/network.rst",
            category="1. Plan",
        ),
        coverage=report(
            ws("plan", "coverage.png"),
            caption="../report/coverage.rst",
            category="1. Plan",
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
        pairs=CFG.pairs.model_dump(),
        keep=CFG.keep,
    script:
        "../scripts/plan.py"
