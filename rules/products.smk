# Products per pair: COG GeoTIFFs from topsApp's geocoded merged/*.geo, then quicklook PNGs.
#
# export_pair reads each input once in row windows (bounded memory at any raster size) and is
# the same code as `dinsar export WORKDIR OUTDIR`; quicklooks_pair only reads the COGs'
# overviews, so restyling a figure never re-exports.
from dinsar.products import expected_products, pair_info_dict


def products_geocoded():
    """The geocode-list entries topsApp really writes (rules/isce.smk knows best)."""
    entries = globals().get("ISCE_GEOCODE")
    # ISCE stage not included: the config's list, minus the unwrapped files
    if entries is None:
        entries = [
            e
            for e in CFG.isce.geocode_list
            if CFG.isce.unwrap or not ("filt_topophase.unw" in e or "conncomp" in e)
        ]
    return list(entries)


# key -> file name in products/<pair>/ (the outputs follow the geocode list)
PRODUCT_FILES = expected_products(products_geocoded())


def export_inputs(wildcards):
    """The geocoded rasters with their ISCE .xml (band layout and grid), and the orbit records."""
    files = {}
    for entry in products_geocoded():
        name = entry.removeprefix("merged/")
        if name in ("dem.crop",) or entry.endswith(".ion"):
            continue
        key = name.replace(".", "_")
        files[key] = ws("work", wildcards.pair, f"{entry}.geo")
        files[f"{key}_xml"] = ws("work", wildcards.pair, f"{entry}.geo.xml")
    ref, sec = wildcards.pair.split("_")
    files["orbits"] = [ws("orbits", f"{ref}.json"), ws("orbits", f"{sec}.json")]
    return files


def pair_info_param(wildcards):
    """Dates, baselines and track of the pair, for titles and tags."""
    return pair_info_dict(stack().pair_by_id[wildcards.pair])


rule export_pair:
    input:
        unpack(export_inputs),
    output:
        **{k: ws("products", "{pair}", f) for k, f in PRODUCT_FILES.items()},
        metadata=ws("products", "{pair}", "metadata.json"),
    log:
        ws("logs", "export_pair", "{pair}.log"),
    benchmark:
        ws("benchmarks", "export_pair", "{pair}.tsv")
    conda:
        "../envs/workflow.yaml"
    # numpy runs the windowed passes while one worker translates finished rasters to COGs
    threads: 2
    resources:
        # measured peak below 1 GB for a 20000 x 15000 pair (benchmarks/README.md)
        mem_mb=1500,
        runtime=60,
    params:
        workdir=lambda wildcards: ws("work", wildcards.pair),
        pair=pair_info_param,
        reference_point=CFG.products.reference_point,
        coherence_threshold=CFG.products.coherence_threshold,
    script:
        "../scripts/export_pair.py"


def quicklook_outputs():
    """One report item per quicklook; the displacement one only when there is unwrapped phase."""
    kinds = {"wrapped_phase": "Wrapped phase", "coherence": "Coherence"}
    if "los_displacement" in PRODUCT_FILES:
        kinds = {"displacement": "LOS displacement", **kinds}
    return {
        kind: report(
            ws("products", "{pair}", f"quicklook_{kind}.png"),
            caption=f"../report/quicklook_{kind}.rst",
            category="2. Pairs",
            subcategory="{pair}",
            labels={"pair": "{pair}", "figure": label},
        )
        for kind, label in kinds.items()
    }


rule quicklooks_pair:
    input:
        metadata=rules.export_pair.output.metadata,
        rasters=[ws("products", "{pair}", f) for f in PRODUCT_FILES.values()],
    output:
        **quicklook_outputs(),
    log:
        ws("logs", "quicklooks_pair", "{pair}.log"),
    benchmark:
        ws("benchmarks", "quicklooks_pair", "{pair}.tsv")
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        roi=CFG.roi,
        pair=pair_info_param,
        coherence_threshold=CFG.products.coherence_threshold,
    script:
        "../scripts/quicklooks_pair.py"


def pair_products(wildcards=None):
    """Every pair's rasters, metadata and quicklooks."""
    files = []
    for pair in pair_ids():
        files += [ws("products", pair, f) for f in PRODUCT_FILES.values()]
        files.append(ws("products", pair, "metadata.json"))
        files += [
            ws("products", pair, f"quicklook_{k}.png") for k in quicklook_outputs()
        ]
    return files
