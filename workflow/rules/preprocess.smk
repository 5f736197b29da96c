# Read each FCS file, check its panel, compensate, transform and quality-check its events.


if COMPENSATION["source"] == "controls":

    rule estimate_spillover:
        input:
            manifest=COMPENSATION["controls"],
        output:
            matrix="results/compensation/spillover.tsv",
            slopes="results/compensation/residual_slopes.tsv",
        conda:
            "../envs/cytotrial.yaml"
        log:
            "logs/estimate_spillover.log",
        benchmark:
            "results/benchmarks/estimate_spillover.tsv"
        script:
            "../../scripts/estimate_spillover.py"


rule fit_batch_transforms:  # batches cut into several process_samples jobs, or all with batch-pooled gates
    wildcard_constraints:
        batch=literal_alternation(BATCHES_FITTED_ALONE) if BATCHES_FITTED_ALONE else "(?!)",
    input:
        fcs=fcs_of_batch,
        panel=config["panel"],
        matrix=compensation_matrix_file,
    output:
        parameters="results/transforms/{batch}.json",
    params:
        settings=preprocess_settings(),
        on_bad_file=ON_BAD_FILE,
    threads: 1
    resources:
        mem_mb=batch_transforms_mem_mb,
        runtime=lambda wildcards, input, attempt: int((10 + input.size_mb / 100) * attempt),
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/fit_batch_transforms/{batch}.log",
    benchmark:
        "results/benchmarks/fit_batch_transforms/{batch}.tsv"
    script:
        "../../scripts/fit_batch_transforms.py"


if POOLED_GATES:  # the pooled fit needs every sample's preprocessed events: preprocess and gate in two jobs

    rule preprocess_sample:
        input:
            fcs=fcs_of,
            panel=config["panel"],
            transforms=batch_transforms_of,
            matrix=compensation_matrix_file,
        output:
            events=temp("results/events/{sample}.h5ad"),
            **PREPROCESS_OUTPUTS,
        params:
            settings=preprocess_settings(),
            study_day=study_day_of,
            on_bad_file=ON_BAD_FILE,
        threads: 1
        resources:
            mem_mb=sample_mem_mb,
            runtime=sample_runtime,
        group:
            SAMPLE_GROUP
        conda:
            "../envs/cytotrial.yaml"
        log:
            "logs/preprocess_sample/{sample}.log",
        benchmark:
            "results/benchmarks/preprocess_sample/{sample}.tsv"
        script:
            "../../scripts/preprocess_sample.py"
