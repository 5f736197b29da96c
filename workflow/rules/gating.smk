# Gate each sample with the data-driven template; keep every realised gate.


rule gate_sample:
    input:
        events="results/events/{sample}.h5ad",
        template=config["gating_template"],
    output:
        populations="results/populations/{sample}.tsv",
        gates="results/gates/{sample}.json",
        review="results/gates/{sample}.review.npz",
    params:
        # passed as a parameter, so that editing one sample's overrides re-gates that sample only
        overrides=lambda wildcards: OVERRIDES.get(wildcards.sample, {}),
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/gate_sample/{sample}.log",
    benchmark:
        "results/benchmarks/gate_sample/{sample}.tsv"
    script:
        "../../scripts/gate_sample.py"
