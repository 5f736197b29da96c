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
        focus=config.get("report", {}).get("focus_populations", ["Treg"]),
    conda:
        "../envs/cytotrial.yaml"
    log:
        "logs/render_summary.log",
    benchmark:
        "results/benchmarks/render_summary.tsv"
    script:
        "../../scripts/render_summary.py"
