# Unsupervised discovery: pooled gated events clustered (Leiden, FlowSOM) and compared with the gates.


rule discover_clusters:
    input:
        events=expand("results/anndata/events/{sample}.h5ad", sample=SAMPLES.index),
        populations="results/tables/populations.tsv",
        responses="results/tables/responses.tsv",
    output:
        h5ad="results/discovery/clusters.h5ad",
        concordance="results/tables/cluster_concordance.tsv",
        annotation="results/tables/cluster_annotation.tsv",
        abundance="results/tables/cluster_abundance.tsv",
        figures=report(expand("results/discovery/{figure}.png", figure=DISCOVERY_FIGURES),
                       caption="../report/discovery.rst", category="5. Discovery"),
    params:
        settings=config.get("discovery", {}),
        units=config["transform"]["fluorescence"],
    threads: 1  # UMAP, Leiden and FlowSOM run on one core here: a second one only kept other jobs waiting
    priority: 10  # the longest trial-level job: started first, the other trial-level jobs fill the cores beside it
    resources:
        mem_mb=4000,
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/discover_clusters.log",
    benchmark:
        "results/benchmarks/discover_clusters.tsv"
    script:
        "../../scripts/discover_clusters.py"
