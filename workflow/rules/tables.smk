# Merge per-sample population tables and summarise immune changes by visit.


rule merge_populations:
    input:
        populations=expand("results/populations/{sample}.tsv", sample=SAMPLES.index),
        samples=config["samples"],
        patients=config["patients"],
    output:
        table="results/tables/populations.tsv",
    params:
        visits=config["visits"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/merge_populations.log",
    benchmark:
        "results/benchmarks/merge_populations.tsv"
    script:
        "../../scripts/merge_populations.py"


rule summarise_immune_changes:
    input:
        populations="results/tables/populations.tsv",
    output:
        table="results/tables/immune_changes.tsv",
    params:
        visits=config["visits"],
        baseline=config["baseline_visit"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/summarise_immune_changes.log",
    benchmark:
        "results/benchmarks/summarise_immune_changes.tsv"
    script:
        "../../scripts/summarise_immune_changes.py"


rule summarise_acquisition:
    input:
        qc=expand("results/qc/{sample}.tsv", sample=SAMPLES.index),
        metadata=expand("results/metadata/{sample}.json", sample=SAMPLES.index),
        samples=config["samples"],
    output:
        qc="results/tables/qc.tsv",
        inputs="results/tables/input_files.tsv",
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/summarise_acquisition.log",
    benchmark:
        "results/benchmarks/summarise_acquisition.tsv"
    script:
        "../../scripts/summarise_acquisition.py"
