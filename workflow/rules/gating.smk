# Gate each sample with the data-driven template; keep every realised gate.


if POOLED_GATES:  # gates fitted on the pooled events of each batch (pool: batch): preprocess, pool, then gate

    rule fit_pooled_gates:
        input:
            events=lambda wildcards: expand("results/events/{sample}.h5ad", sample=samples_of_batch(wildcards.batch)),
            template=config["gating_template"],
        output:
            pooled="results/gates/pooled/{batch}.json",
        params:
            samples=lambda wildcards: samples_of_batch(wildcards.batch),
            overrides=lambda wildcards: {s: OVERRIDES[s] for s in samples_of_batch(wildcards.batch) if s in OVERRIDES},
        conda:
            "../envs/cytotrial.yaml"
        log:
            "logs/fit_pooled_gates/{batch}.log",
        benchmark:
            "results/benchmarks/fit_pooled_gates/{batch}.tsv"
        script:
            "../../scripts/fit_pooled_gates.py"

    rule gate_sample:
        input:
            events="results/events/{sample}.h5ad",
            template=config["gating_template"],
            pooled=pooled_gates_of,
        output:
            **GATE_OUTPUTS,
        params:
            # passed as a parameter, so that editing one sample's overrides re-gates that sample only
            overrides=lambda wildcards: OVERRIDES.get(wildcards.sample, {}),
            workspace_group=config.get("gating_workspace_group", "All Samples"),
            events_per_sample=config.get("anndata", {}).get("events_per_sample", 10000),
        threads: 1
        resources:
            mem_mb=sample_mem_mb,
            runtime=sample_runtime,
        conda:
            "../envs/cytotrial.yaml"
        log:
            "logs/gate_sample/{sample}.log",
        benchmark:
            "results/benchmarks/gate_sample/{sample}.tsv"
        script:
            "../../scripts/gate_sample.py"


else:  # several samples to a job (a unit: see common.smk), each read, cleaned, gated and quantified in memory

    for unit, spec in PROCESSING_UNITS.items():

        rule:
            name:
                f"process_samples_{UNIT_RULE_SUFFIX[unit]}"
            input:
                fcs=[SAMPLES.loc[s, "fcs"] for s in spec["samples"]],
                panel=config["panel"],
                transforms=[f"results/transforms/{b}.json" for b in spec["batches"]
                            if TRANSFORM_SCOPE == "batch" and b not in spec["fitted_batches"]],
                matrix=compensation_matrix_file(),
                template=config["gating_template"],
            output:
                [path for s in spec["samples"] for path in sample_outputs(s).values()],
                transforms=[f"results/transforms/{b}.json" for b in spec["fitted_batches"]],
            params:
                samples={s: {"fcs": SAMPLES.loc[s, "fcs"],
                             "study_day": study_day_of(SimpleNamespace(sample=s)),
                             "transforms": batch_transforms_of(SimpleNamespace(sample=s)) or None,
                             # editing one sample's overrides re-runs the job of its unit only
                             "overrides": OVERRIDES.get(s, {}),
                             "outputs": sample_outputs(s)} for s in spec["samples"]},
                fitted_batches={b: {"fcs": fcs_of_batch(SimpleNamespace(batch=b)),
                                    "output": f"results/transforms/{b}.json"} for b in spec["fitted_batches"]},
                settings=preprocess_settings(),
                on_bad_file=ON_BAD_FILE,
                workspace_group=config.get("gating_workspace_group", "All Samples"),
                events_per_sample=config.get("anndata", {}).get("events_per_sample", 10000),
            threads: 1
            resources:
                mem_mb=unit_mem_mb(spec["samples"]),
                runtime=unit_runtime(spec["samples"]),
            group:
                SAMPLE_GROUP
            conda:
                "../envs/cytotrial.yaml"
            log:
                f"logs/process_samples/{unit}.log",
            benchmark:
                f"results/benchmarks/process_samples/{unit}.tsv"
            script:
                "../../scripts/process_samples.py"


# the review figures (one per gate) in a few jobs of at most review.figures_per_job figures: one Python start-up
# per job, and the jobs run side by side with the trial-level rules
for part, figures in REVIEW_PARTS.items():

    rule:
        name:
            f"review_gates_{part}"
        input:
            gates=expand("results/gates/{sample}.json", sample=SAMPLES.index),
            review=expand("results/gates/{sample}.review.npz", sample=SAMPLES.index),
            populations="results/tables/populations.tsv",
        output:
            figures=[report(f"results/review/{figure}.png", caption="../report/review.rst", category="3. Gating",
                            labels={"gate": population}) for figure, population in figures],
        params:
            visits=config["visits"],
            populations=[population for _, population in figures],
            fluorescence_units=config["transform"]["fluorescence"],
        conda:
            "../envs/cytotrial.yaml"
        log:
            f"logs/review_gates/{part}.log",
        benchmark:
            f"results/benchmarks/review_gates/{part}.tsv"
        script:
            "../../scripts/review_gates.py"


rule export_trial_workspace:
    input:
        gatingml=expand("results/gates/{sample}.gatingml.xml", sample=SAMPLES.index),
        fcs=expand("results/export/fcs/{sample}.fcs", sample=SAMPLES.index),
        gates=expand("results/gates/{sample}.json", sample=SAMPLES.index),
    output:
        workspace="results/export/trial.wsp",
    params:
        samples=list(SAMPLES.index),
        visits=list(SAMPLES.visit),
        visit_order=config["visits"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/export_trial_workspace.log",
    benchmark:
        "results/benchmarks/export_trial_workspace.tsv"
    script:
        "../../scripts/export_trial_workspace.py"
