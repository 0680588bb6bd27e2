# One DEM per track (ISCE format, ellipsoidal heights) covering every used scene of the track
# that overlaps the ROI, plus dem.buffer; and a coarser geocoding DEM.
from dinsar.dem import DemSpec


rule dem:
    input:
        after_search,
    output:
        manifest=ws("dem", "{track}", "dem.json"),
        dem=ws("dem", "{track}", "dem.wgs84"),
        dem_xml=ws("dem", "{track}", "dem.wgs84.xml"),
        dem_vrt=ws("dem", "{track}", "dem.wgs84.vrt"),
        geocode=ws("dem", "{track}", "geocode_dem.wgs84"),
        geocode_xml=ws("dem", "{track}", "geocode_dem.wgs84.xml"),
        geocode_vrt=ws("dem", "{track}", "geocode_dem.wgs84.vrt"),
    log:
        ws("logs", "dem", "{track}.log"),
    benchmark:
        ws("benchmarks", "dem", "{track}.tsv")
    retries: 1
    # tiles and the geoid come from the network: run where the internet is
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        # what defines the DEM (its bounds come from the footprints): a change re-makes it
        spec=lambda w: DemSpec.for_track(stack().used, w.track, CFG).to_params(),
    script:
        "../scripts/dem.py"
