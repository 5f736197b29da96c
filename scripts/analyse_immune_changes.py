"""Rule analyse_immune_changes: change tests, group comparisons, the primary immunological endpoint, models,
dose-response, response rates, baseline predictors, rescue sensitivity and platelet correlations."""

from pathlib import Path

from cytotrial.io.tables import read_tsv, write_tsv
from cytotrial.response import load_platelets
from cytotrial.steps.runlog import rule_logging
from cytotrial.io.sheets import load_patients
from cytotrial.stats.analysis import immune_change_analysis
from cytotrial.stats.settings import StatisticsSettings

with rule_logging(snakemake) as log:
    settings = StatisticsSettings.from_dict(snakemake.params.settings)
    tables = immune_change_analysis(read_tsv(snakemake.input.populations, "population table"),
                                    read_tsv(snakemake.input.responses, "response table"),
                                    load_platelets(snakemake.input.platelets), snakemake.params.visits,
                                    baseline=snakemake.params.baseline, settings=settings,
                                    patients=load_patients(snakemake.input.patients))
    outputs = {Path(p).stem: p for p in snakemake.output}
    for name, table in tables.items():
        write_tsv(table, outputs[name])
        log.info("%s: %d rows", name, len(table))
    primary = tables["primary_endpoint"]
    log.info("primary immunological endpoint: %s", primary.iloc[:1].to_dict("records"))
