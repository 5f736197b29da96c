# Read each FCS file, check its panel, compensate and transform it.


rule preprocess_sample:
    input:
        fcs=fcs_of,
        panel=config["panel"],
    output:
        events=temp("results/events/{sample}.h5ad"),
    params:
        transform=config["transform"],
        compensation=config["compensation"]["source"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/preprocess_sample/{sample}.log",
    benchmark:
        "results/benchmarks/preprocess_sample/{sample}.tsv"
    script:
        "../../scripts/preprocess_sample.py"
