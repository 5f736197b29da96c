# cytotrial: clinical-trial flow cytometry, from FCS files to immune-change tables.
# Run from the repository root:  snakemake --cores 8   (see README.md)

configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


rule all:
    input:
        "results/tables/populations.tsv",
        "results/tables/immune_changes.tsv",
        "results/tables/qc.tsv",
        "results/tables/input_files.tsv",
        "results/report/summary.html",
        "results/tables/mfi.tsv",
        "results/tables/responses.tsv",
        "results/anndata/populations.h5ad",
        "results/report/figures/swimmer.png",
        "results/report/figures/volcano.png",
        "results/tables/cytotrial_tables.xlsx",
        "results/report/provenance.html",
        expand("results/report/tables/{table}.html", table=sorted(REPORT_TABLES)),
        expand("results/discovery/{figure}.png", figure=DISCOVERY_FIGURES) if DISCOVERY else [],
        expand("results/review/{figure}.png", figure=sorted(REVIEW_FIGURES)),
    default_target: True


include: "workflow/rules/simulate.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/gating.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/discovery.smk"
include: "workflow/rules/statistics.smk"
include: "workflow/rules/report.smk"
