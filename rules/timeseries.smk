# The time series of a track (timeseries.enabled): each pair's MintPy hand-off beside its
# products, then MintPy's smallbaselineApp.py, run as a program in its own process (GPL-3.0),
# inverts the track's network; its results become our products under products/timeseries/.


rule mintpy_handoff_pair:
    input:
        unpack(handoff_inputs),
    output:
        directory(ws("products", "{pair}", "mintpy")),
    log:
        ws("logs", "mintpy_handoff_pair", "{pair}.log"),
    benchmark:
        ws("benchmarks", "mintpy_handoff_pair", "{pair}.tsv")
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        # row windows of a fixed budget (mintpy_handoff.MEMORY_BUDGET_MB)
        mem_mb=800,
        runtime=20,
    script:
        "../scripts/mintpy_handoff_pair.py"


rule timeseries_track:
    input:
        unpack(timeseries_inputs),
    output:
        **timeseries_outputs(),
    log:
        ws("logs", "timeseries_track", "{track}.log"),
    benchmark:
        ws("benchmarks", "timeseries_track", "{track}.tsv")
    conda:
        "../envs/timeseries.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=CFG.timeseries.model_dump(),
        work_dir=lambda wildcards: ws("work", "timeseries", wildcards.track),
    script:
        "../scripts/timeseries_track.py"


rule timeseries:
    """The time series of every track that can be inverted (the plan says which)."""
    input:
        timeseries_targets,
    localrule: True
