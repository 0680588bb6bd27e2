# Products per pair: COG GeoTIFFs from topsApp's geocoded merged/*.geo, then quicklook PNGs.
#
# export_pair reads each input once in row windows (bounded memory at any raster size) and is
# the same code as `dinsar export WORKDIR OUTDIR`; quicklooks_pair only reads the COGs'
# overviews, so restyling a figure never re-exports.
from dinsar.products import expected_products, pair_info_dict

# key -> file name in products/<pair>/ (the outputs follow the geocode list)
PRODUCT_FILES = expected_products(products_geocoded())


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
        pair=lambda wc: pair_info_dict(stack().pair_by_id[wc.pair]),
        reference_point=CFG.products.reference_point,
        coherence_threshold=CFG.products.coherence_threshold,
    script:
        "../scripts/export_pair.py"


rule quicklooks_pair:
    input:
        after_search,
        metadata=rules.export_pair.output.metadata,
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
        pair=lambda wc: pair_info_dict(stack().pair_by_id[wc.pair]),
        coherence_threshold=CFG.products.coherence_threshold,
    script:
        "../scripts/quicklooks_pair.py"
