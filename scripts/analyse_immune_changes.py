"""Rule analyse_immune_changes: change tests, group comparisons, primary endpoint, models, platelet correlation."""

from pathlib import Path

from cytotrial.io.tables import read_tsv, write_tsv
from cytotrial.response import load_platelets
from cytotrial.runlog import rule_logging
from cytotrial.stats.analysis import immune_change_analysis

with rule_logging(snakemake) as log:
    tables = immune_change_analysis(read_tsv(snakemake.input.populations, "population table"),
                                    read_tsv(snakemake.input.responses, "response table"),
                                    load_platelets(snakemake.input.platelets), snakemake.params.visits,
                                    snakemake.params.baseline, snakemake.params.primary)
    outputs = {Path(p).stem: p for p in snakemake.output}
    for name, table in tables.items():
        write_tsv(table, outputs[name])
        log.info("%s: %d rows", name, len(table))
    primary = tables["primary_endpoint"]
    log.info("primary endpoint: %s", primary[primary.role == "primary"].to_dict("records"))
