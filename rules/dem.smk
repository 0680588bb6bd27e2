# One DEM per track (ISCE format, ellipsoidal heights) covering the bursts topsApp will process
# on every used date of the track (from the annotations in the zips), the geocoding box and
# dem.buffer; and a geocoding DEM at the products' posting.


# Where the DEM must reach, read from the annotations in the zips. A checkpoint: the DEM takes
# its result as params (values), not as an input file, so a zip downloaded again (the same
# bytes) does not re-make the DEM, and so every pair of the track.
checkpoint dem_extent:
    input:
        # ancient: only the bytes matter, and a download never changes them
        zips=lambda w: [
            ancient(z)
            for a in stack().used
            if a.track == w.track
            for z in safe_zips(a)
        ],
    output:
        extent=ws("dem", "{track}", "extent.json"),
    log:
        ws("logs", "dem_extent", "{track}.log"),
    benchmark:
        ws("benchmarks", "dem_extent", "{track}.tsv")
    retries: 0
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dem=CFG.dem.model_dump(include={"file", "buffer"}),
        roi=CFG.roi,
        isce=CFG.isce.model_dump(
            include={"swaths", "geocode_margin", "range_looks", "azimuth_looks"}
        ),
        polarization=CFG.search.polarization,
        dates=lambda w: {
            a.date: safe_zips(a) for a in stack().used if a.track == w.track
        },
    script:
        "../scripts/dem_extent.py"


rule dem:
    input:
        # no file: waiting for the checkpoint orders the jobs, an empty list adds no input
        extent_done=lambda w: checkpoints.dem_extent.get(track=w.track) and [],
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
    retries: 0
    # tiles and the geoid come from the network: run where the internet is
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        # what defines the DEM: a change re-makes it
        dem=CFG.dem.model_dump(exclude={"tiles_url", "geoid"}),
        extent=lambda w: DemExtent.read(
            checkpoints.dem_extent.get(track=w.track).output.extent
        ).model_dump(),
    script:
        "../scripts/dem.py"
