# The one-page HTML summary.


rule render_summary:
    input:
        populations="results/tables/populations.tsv",
        changes="results/tables/immune_changes.tsv",
        qc="results/tables/qc.tsv",
    output:
        html="results/report/summary.html",
    params:
        visits=config["visits"],
        focus=config["report"]["focus_populations"],
        labels=LABELS,
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/render_summary.log",
    benchmark:
        "results/benchmarks/render_summary.tsv"
    script:
        "../../scripts/render_summary.py"


rule plot_report_figures:
    input:
        populations="results/tables/populations.tsv",
        responses="results/tables/responses.tsv",
        counts="results/tables/platelet_counts.tsv",
        patients=config["patients"],
        qc="results/tables/qc.tsv",
    output:
        swimmer=report("results/report/figures/swimmer.png", caption="../report/swimmer.rst",
                       category="1. Cohort and response"),
        qc=report("results/report/figures/qc_overview.png", caption="../report/qc_overview.rst",
                  category="2. Quality control"),
        trajectories=report("results/report/figures/trajectories.png", caption="../report/trajectories.rst",
                            category="4. Immune changes"),
        heatmap=report("results/report/figures/change_heatmap.png", caption="../report/change_heatmap.rst",
                       category="4. Immune changes"),
    params:
        visits=config["visits"],
        baseline=config["baseline_visit"],
        focus=config["report"]["focus_populations"],
        labels=LABELS,
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/plot_report_figures.log",
    benchmark:
        "results/benchmarks/plot_report_figures.tsv"
    script:
        "../../scripts/plot_report_figures.py"


rule render_table_pages:
    input:
        tables=[f"results/tables/{table}.tsv" for table in sorted(REPORT_TABLES)],
    output:
        # every table's page in one job (one Python start-up instead of one per table)
        pages=[report(f"results/report/tables/{table}.html", caption="../report/table.rst", category="6. Tables",
                      labels={"table": REPORT_TABLES[table]}) for table in sorted(REPORT_TABLES)],
    params:
        titles=[REPORT_TABLES[table] for table in sorted(REPORT_TABLES)],
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/render_table_pages.log",
    benchmark:
        "results/benchmarks/render_table_pages.tsv"
    script:
        "../../scripts/render_table_pages.py"


rule write_provenance:
    input:
        files="results/tables/input_files.tsv",
    output:
        html=report("results/report/provenance.html", caption="../report/provenance.rst", category="7. Provenance"),
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/write_provenance.log",
    benchmark:
        "results/benchmarks/write_provenance.tsv"
    script:
        "../../scripts/write_provenance.py"
