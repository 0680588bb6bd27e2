# Search ASF (or read a saved search): the checkpoint that decides dates and pairs.


checkpoint search:
    input:
        saved=[CFG.inventory] if CFG.inventory else [],
    output:
        scenes=ws("inventory", "scenes.geojson"),
        dates=ws("inventory", "dates.csv"),
    log:
        ws("logs", "search", "search.log"),
    benchmark:
        ws("benchmarks", "search", "search.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        query=search_params(),
        # written by the search itself when no date is usable (the plan then never runs)
        coverage=ws("plan", "coverage.png"),
    script:
        "../scripts/search.py"
