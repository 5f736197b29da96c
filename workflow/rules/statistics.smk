# Statistics of immune changes and their link to platelet response; the Excel workbook.


rule analyse_immune_changes:
    input:
        populations="results/tables/populations.tsv",
        responses="results/tables/responses.tsv",
        platelets=config["clinical"]["platelets"],
        patients=config["patients"],
    output:
        expand("results/tables/{table}.tsv", table=STATISTICS_TABLES),
    params:
        visits=config["visits"],
        baseline=config["baseline_visit"],
        settings=STATISTICS,
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/analyse_immune_changes.log",
    benchmark:
        "results/benchmarks/analyse_immune_changes.tsv"
    script:
        "../../scripts/analyse_immune_changes.py"


rule plot_statistics_figures:
    input:
        comparison="results/tables/response_comparison.tsv",
        rmcorr="results/tables/platelet_rmcorr.tsv",
        populations="results/tables/populations.tsv",
        responses="results/tables/responses.tsv",
        platelets=config["clinical"]["platelets"],
    output:
        volcano=report("results/report/figures/volcano.png", caption="../report/volcano.rst",
                       category="4. Immune changes"),
        rmcorr=report("results/report/figures/platelet_correlation.png", caption="../report/rmcorr.rst",
                      category="4. Immune changes"),
    params:
        population=STATISTICS["primary_endpoint"]["population"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/plot_statistics_figures.log",
    benchmark:
        "results/benchmarks/plot_statistics_figures.tsv"
    script:
        "../../scripts/plot_statistics_figures.py"


rule write_workbook:
    input:
        expand("results/tables/{table}.tsv", table=WORKBOOK_TABLES),
    output:
        xlsx="results/tables/cytotrial_tables.xlsx",
    params:
        notes=WORKBOOK_NOTES,
        labels=LABELS,
        visits=config["visits"],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/write_workbook.log",
    benchmark:
        "results/benchmarks/write_workbook.tsv"
    script:
        "../../scripts/write_workbook.py"
