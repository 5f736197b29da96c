# Merge per-sample tables; absolute counts, responses, AnnData views and immune changes.


rule merge_populations:
    input:
        populations=expand("results/populations/{sample}.tsv", sample=SAMPLES.index),
        samples=config["samples"],
        patients=config["patients"],
        qc="results/tables/qc.tsv",
        blood_counts=blood_counts_table,
        platelets=config["clinical"]["platelets"],
    output:
        table="results/tables/populations.tsv",
    params:
        visits=config["visits"],
        references=ABSOLUTE_REFERENCES,
        rescue_window_days=STATISTICS["rescue_sample_window_days"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/merge_populations.log",
    benchmark:
        "results/benchmarks/merge_populations.tsv"
    script:
        "../../scripts/merge_populations.py"


rule merge_mfi:
    input:
        mfi=expand("results/populations/{sample}.mfi.tsv", sample=SAMPLES.index),
    output:
        table="results/tables/mfi.tsv",
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/merge_mfi.log",
    benchmark:
        "results/benchmarks/merge_mfi.tsv"
    script:
        "../../scripts/merge_mfi.py"


rule derive_responses:
    input:
        platelets=config["clinical"]["platelets"],
    output:
        responses="results/tables/responses.tsv",
        counts="results/tables/platelet_counts.tsv",
    params:
        criteria=RESPONSE_CRITERIA,
        patients=list(PATIENTS.patient_id),
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/derive_responses.log",
    benchmark:
        "results/benchmarks/derive_responses.tsv"
    script:
        "../../scripts/derive_responses.py"


rule build_population_anndata:
    input:
        populations="results/tables/populations.tsv",
        mfi="results/tables/mfi.tsv",
        responses="results/tables/responses.tsv",
    output:
        h5ad="results/anndata/populations.h5ad",
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/build_population_anndata.log",
    benchmark:
        "results/benchmarks/build_population_anndata.tsv"
    script:
        "../../scripts/build_population_anndata.py"


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
        keywords="results/tables/fcs_keywords.tsv",
    params:
        missing=MISSING_FCS,
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/summarise_acquisition.log",
    benchmark:
        "results/benchmarks/summarise_acquisition.tsv"
    script:
        "../../scripts/summarise_acquisition.py"
