# Config completion and validation, sample sheet loading and input functions shared by all rules.

import os
import re
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import min_version, validate

try:
    import cytotrial  # noqa: F401 - the sheets, template and settings are checked with it before any job runs
except ImportError:
    raise ImportError(
        "cytotrial workflow: the Python package 'cytotrial' is not installed in the environment that runs "
        "snakemake. The workflow checks the sample sheet, gating template and settings with it before any job "
        "runs: install it with `pip install <path or git URL of the cytotrial repository>` (see README.md, "
        "'Deploying the workflow')."
    ) from None

from cytotrial.config import complete_config
from cytotrial.gating.overrides import load_overrides
from cytotrial.gating.plan_engine import StaticTemplate, load_gating_template, review_file_names
from cytotrial.io.deid import check_extra_whitelist
from cytotrial.preprocess.qc import QcSettings
from cytotrial.response import ResponseCriteria
from cytotrial.io.sheets import last_visit_day, load_patients, load_samples, missing_fcs_files, processing_units
from cytotrial.stats.analysis import STATISTICS_TABLES as STATISTICS_COLUMNS
from cytotrial.stats.settings import StatisticsSettings

min_version("9.0")


# the project's settings over the defaults; relative paths are read from the project folder (the working directory)
_completed = complete_config(config, workflow.source_path("../schemas/defaults.yaml"),
                             workflow.source_path("../schemas/config.schema.yaml"), os.getcwd())
config.clear()
config.update(_completed)

PATIENTS = load_patients(config["patients"])
validate(PATIENTS, schema="../schemas/patients.schema.yaml")
SAMPLES = load_samples(config["samples"], config["visits"], PATIENTS).set_index("sample_id", drop=False)
validate(SAMPLES, schema="../schemas/samples.schema.yaml")
if "batch" not in SAMPLES.columns:
    SAMPLES["batch"] = SAMPLES["sample_id"]
DEMO = config.get("demo", {"enabled": False})
COMPENSATION = config["compensation"]
TRANSFORM_SCOPE = config["transform"].get("scope", "batch")
QcSettings.from_dict(config.get("qc", {}))  # refuses unknown or invalid QC settings before any job runs
# the response's assessment window: config response.window_days, or the study day of the protocol's last visit
RESPONSE_CRITERIA = dict(config.get("response", {}))
if RESPONSE_CRITERIA.get("window_days") is None:
    RESPONSE_CRITERIA["window_days"] = last_visit_day(SAMPLES, config["visits"])
ResponseCriteria.from_dict(RESPONSE_CRITERIA)  # refuses unknown or invalid response settings likewise
# the pre-declared primary endpoint; by default the Treg share of CD4, mean change over every later visit
STATISTICS = {**config["statistics"], "primary_endpoint": {
    "population": "Treg", "visits": [v for v in config["visits"] if v != config["baseline_visit"]],
    "value": "percent_of", "complete_cases": True, **(config["statistics"].get("primary_endpoint") or {})}}
StatisticsSettings.from_dict(STATISTICS)  # refuses invalid statistics settings likewise
check_extra_whitelist(config.get("deidentification", {}).get("extra_whitelist", []))
ON_BAD_FILE = config.get("on_bad_file", "exclude")
if not DEMO.get("enabled", False):
    # a sample sheet row whose FCS file does not exist: excluded (listed in the QC table) or the run stops
    MISSING_FCS = missing_fcs_files(SAMPLES, config["samples"])
    if MISSING_FCS and ON_BAD_FILE == "fail":
        raise ValueError("sample sheet: FCS file(s) not found (on_bad_file: fail):\n  " + "\n  ".join(
            MISSING_FCS.values()) + "\nFix the 'fcs' paths, or set on_bad_file: exclude to run without them.")
    SAMPLES = SAMPLES.drop(index=list(MISSING_FCS))
else:
    MISSING_FCS = {}
TEMPLATE = load_gating_template(config["gating_template"], config.get("gating_workspace_group", "All Samples"))
# an adaptive template's gates differ per sample: each sample's are exported for FlowJo (static ones are the template)
GATE_EXPORTS = {"gatingml": "results/gates/{sample}.gatingml.xml", "workspace": "results/gates/{sample}.wsp"}
if isinstance(TEMPLATE, StaticTemplate):
    GATE_EXPORTS = {}
REVIEW_FIGURES = review_file_names(TEMPLATE.names)  # file name -> population (gate ids may hold any character)
# the review figures cut into parts of consecutive figures (sorted by file name), one job each: part1, part2, ...
_review = sorted(REVIEW_FIGURES.items())
_per_job = config["review"]["figures_per_job"]
REVIEW_PARTS = {f"part{i // _per_job + 1}": _review[i:i + _per_job] for i in range(0, len(_review), _per_job)}
UNKNOWN_EXPORTS = sorted(set(config["export"]["population_fcs"]) - set(TEMPLATE.names))
if UNKNOWN_EXPORTS:
    raise ValueError(f"config: export.population_fcs names {UNKNOWN_EXPORTS}, which are not populations of the "
                     f"gating template {config['gating_template']}; its populations: {', '.join(TEMPLATE.names)}")
OVERRIDES = load_overrides(config["gating_overrides"] or None, TEMPLATE, set(SAMPLES.index))

ABSOLUTE_REFERENCES = config.get("absolute_counts", {}).get("references", [])
if any("column" in ref for ref in ABSOLUTE_REFERENCES) and not config["clinical"].get("blood_counts"):
    raise ValueError("config: absolute_counts references blood-count columns, but clinical.blood_counts names no "
                     "table. Add the table (sample_id and cells/uL columns) or remove the references.")
STATISTICS_TABLES = list(STATISTICS_COLUMNS)
WORKBOOK_NOTES = {
    "populations": "every population of every sample: counts, percentages, absolute counts, QC, outlier flags, "
                   "rescue-window flags",
    "responses": "platelet response per patient by the IWG 2009 criteria (response after rescue and "
                 "corticosteroid dependence are NR)",
    "qc": "event QC per sample",
    "changes": "change from baseline per population, value and visit, all patients (Hodges-Lehmann with exact "
               "95 % CI, paired Wilcoxon, BH q per value); rescue-window samples left out",
    "changes_by_response": "the same, separately in responders and non-responders",
    "changes_by_cohort": "the same, separately in each dose cohort",
    "response_comparison": "responders vs non-responders at each visit, on the value and its change (Hodges-Lehmann "
                           "difference with exact 95 % CI, Mann-Whitney)",
    "primary_endpoint": "the primary immunological endpoint (config statistics.primary_endpoint), outside FDR, "
                        "from patients with every endpoint visit",
    "rescue_sensitivity": "the primary endpoint and the paired changes with the samples drawn after rescue therapy "
                          "left out (as everywhere) and kept",
    "mixed_models": "linear mixed model of logit(proportion) or log(count, ratio) on visit x responder with a "
                    "random intercept per patient; t and F on Satterthwaite df; odds ratios / ratios with 95 % CI",
    "count_models": "binomial GEE of counts in their denominator ~ visit x responder, clustered by patient; "
                    "Mancl-DeRouen SE, t(G-1), joint F(q, G-q); odds ratios with 95 % CI",
    "dose_response": "change from baseline by dose level (cohorts at one dose pooled), Jonckheere-Terpstra trend",
    "response_rates": "response rate with Clopper-Pearson 95 % CI: all, per dose level, per cohort; exact "
                      "Cochran-Armitage trend over dose levels",
    "baseline_predictors": "baseline value of every population as a predictor of response: AUC with DeLong 95 % CI, "
                           "Mann-Whitney",
    "time_to_response": "Kaplan-Meier cumulative response by baseline level of the primary population (<= / > "
                        "median), log-rank test",
    "platelet_rmcorr": "repeated-measures correlation of each population with log platelets (rescue windows out)",
    "platelet_change_association": "Spearman correlation of change in population with change in log platelets "
                                   "(rescue windows out)",
}
WORKBOOK_TABLES = list(WORKBOOK_NOTES)
REPORT_TABLES = {  # results/tables/{name}.tsv shown in the report as HTML
    "immune_changes": "Immune changes by visit",
    "primary_endpoint": "Primary immunological endpoint",
    "rescue_sensitivity": "Primary endpoint and changes with and without samples after rescue therapy",
    "response_comparison": "Responders vs non-responders",
    "changes": "Change from baseline, all patients",
    "changes_by_response": "Change from baseline, by response group",
    "changes_by_cohort": "Change from baseline, by cohort",
    "mixed_models": "Mixed models",
    "count_models": "Count models (binomial GEE)",
    "dose_response": "Immune change by dose level (Jonckheere-Terpstra)",
    "response_rates": "Response rate by dose level and cohort",
    "baseline_predictors": "Baseline markers as predictors of response (AUC)",
    "time_to_response": "Time to response by baseline level of the primary population",
    "platelet_rmcorr": "Populations vs platelets (repeated-measures correlation)",
    "platelet_change_association": "Change in populations vs change in platelets",
    "responses": "Platelet response per patient (IWG 2009)",
    "qc": "Event QC per sample",
}
DISCOVERY = config.get("discovery", {}).get("enabled", True)
if DISCOVERY:
    REPORT_TABLES.update({"cluster_concordance": "Clusters vs gated lineages",
                          "cluster_annotation": "Clusters and their best-matching gated population"})
DISCOVERY_FIGURES = ["umap_clusters", "umap_visit_response", "umap_markers", "heatmap_leiden", "heatmap_flowsom"]

LABELS = config["labels"]
# exported FCS files: the sample's QC-kept compensated events, and the configured populations' events
EXPORTS = {}
if config["export"]["fcs"]:
    EXPORTS = {"fcs": "results/export/fcs/{sample}.fcs"}
    EXPORTS.update({f"fcs_{population}": f"results/export/populations/{{sample}}/{population}.fcs"
                    for population in config["export"]["population_fcs"]})


def literal_alternation(words):
    """A regular expression matching exactly the given strings, as a trie of their characters.

    Matches the same strings as "|".join(map(re.escape, words)), but a match costs the length of the string, not
    the number of words: with 5,000 samples the flat alternation made DAG construction grow quadratically.
    """
    trie = {}
    for word in words:
        node = trie
        for character in word:
            node = node.setdefault(character, {})
        node[""] = {}  # a word ends here

    def pattern(node):
        branches = [re.escape(character) + pattern(child) for character, child in sorted(node.items()) if character]
        if not branches:
            return ""
        if len(branches) == 1 and "" not in node:
            return branches[0]
        group = branches[0] if len(branches) == 1 and len(branches[0]) == 1 else f"(?:{'|'.join(branches)})"
        return group + ("?" if "" in node else "")

    return pattern(trie)


wildcard_constraints:
    sample=literal_alternation(SAMPLES.index),


def fcs_of(wildcards):
    return SAMPLES.loc[wildcards.sample, "fcs"]


def preprocess_settings():
    """The config sections the preprocessing of every file needs."""
    return {
        key: config.get(key, {})
        for key in ("compensation", "transform", "qc", "deidentification")
    }


def batch_of(wildcards):
    return SAMPLES.loc[wildcards.sample, "batch"]


def fcs_of_batch(wildcards):
    return sorted(SAMPLES.loc[SAMPLES.batch.astype(str) == str(wildcards.batch), "fcs"])


def samples_of_batch(batch):
    return sorted(SAMPLES.index[SAMPLES.batch == batch])


def pooled_gates_of(wildcards):
    """The gates fitted on the sample's batch, when the template pools any (``pool: batch``)."""
    if getattr(TEMPLATE, "pooled", None):
        return f"results/gates/pooled/{batch_of(wildcards)}.json"
    return []


def blood_counts_table(wildcards=None):
    """The blood-count table, when absolute counts use one."""
    if any("column" in ref for ref in ABSOLUTE_REFERENCES):
        return config["clinical"]["blood_counts"]
    return []


def batch_transforms_of(wildcards):
    """The file's batch transform parameters, when transforms are fitted per batch."""
    if TRANSFORM_SCOPE == "batch":
        return f"results/transforms/{batch_of(wildcards)}.json"
    return []


def compensation_matrix_file(wildcards=None):
    """The external or control-estimated spillover matrix, when compensation uses one."""
    if COMPENSATION["source"] == "matrix":
        return COMPENSATION["matrix"]
    if COMPENSATION["source"] == "controls":
        return "results/compensation/spillover.tsv"
    return []


def demo_fcs_files():
    """The sample sheet's FCS files, which the demo simulator writes (all must lie in demo.output_dir)."""
    out = Path(DEMO["output_dir"])
    outside = [f for f in SAMPLES.fcs if out not in Path(f).parents]
    if outside:
        raise ValueError(
            f"config: demo.enabled is true, so every FCS file must lie under demo.output_dir "
            f"'{out}', but {len(outside)} do not (e.g. {outside[0]}). Set demo.enabled: false for real data."
        )
    return list(SAMPLES.fcs)


# Cluster execution (profiles/slurm): memory and run time of the per-sample rules from the size of the sample's
# FCS file, and the group that puts a sample's jobs in one cluster job. Peak RSS measured on the demo's files
# (results/benchmarks/, docs/cluster.md): at 10,000 / 200,000 / 1,000,000 events (0.9 / 17 / 92 MB),
# preprocess_sample 0.27 / 0.40 / 0.97 GB, gate_sample 0.25 / 0.58 / 0.98 GB: about 0.25 GB + 8 MB per MB of
# file. Asked: 500 MB + 10 MB per MB, at least 1 GB (1.4 GB at 92 MB), doubled on a retry.

DEMO_FCS_BYTES_PER_EVENT = 92  # size of the simulator's files per event (float32 parameters and TEXT)
SAMPLE_BASE_MB, SAMPLE_MB_PER_FCS_MB = 500, 10


def fcs_size_mb(wildcards):
    """Size of the sample's FCS file in MB; before the demo simulator has written it, the size it will have."""
    path = SAMPLES.loc[wildcards.sample, "fcs"]
    try:
        return Path(path).stat().st_size / 1e6
    except OSError:
        if DEMO["enabled"]:
            return DEMO.get("events_per_sample", 200000) * DEMO_FCS_BYTES_PER_EVENT / 1e6
        return 0.0


def sample_mem_mb(wildcards, attempt):
    """mem_mb of process_sample, preprocess_sample and gate_sample (the FCS file's size, not the rule's input:
    gate_sample's input is made inside the same group job, so its size is unknown when the group is submitted)."""
    return int(max(1000, SAMPLE_BASE_MB + SAMPLE_MB_PER_FCS_MB * fcs_size_mb(wildcards)) * attempt)


def sample_runtime(wildcards, attempt):
    """Minutes for preprocess_sample or gate_sample (process_sample, doing both: twice this): 5, plus 1 per 10 MB
    of FCS file (~110,000 events); each takes 10-50 s at 1,000,000 events."""
    return int((5 + fcs_size_mb(wildcards) / 10) * attempt)


def batch_transforms_mem_mb(wildcards, input, attempt):
    """mem_mb of fit_batch_transforms: it reads one file at a time (0.93 GB peak at 1,000,000 events) and keeps
    up to transform.max_events_per_file events of each."""
    largest = max((Path(f).stat().st_size for f in input.fcs), default=0) / 1e6
    return int(max(1000, SAMPLE_BASE_MB + SAMPLE_MB_PER_FCS_MB * largest + 30 * len(input.fcs)) * attempt)


# Samples are preprocessed and gated several to a job, in rules process_samples_<unit> (the samples of a batch, or
# of a patient when the sheet has no batches, at most processing.samples_per_job), so Python starts and imports the
# library once a unit; a batch whose samples are all in one unit has its transforms fitted in that job, others by
# fit_batch_transforms. Batch-pooled gates (`pool: batch`) are fitted on the preprocessed events of every
# sample of the batch, so with them a sample is preprocessed (rule preprocess_sample), the batch's gates fitted
# (fit_pooled_gates), then the sample gated (gate_sample). On a cluster the per-unit (per-sample) jobs are in
# group "sample" (the profile's group-components puts several in one cluster job); gate_sample waits outside it.
SAMPLE_GROUP = "sample"
POOLED_GATES = bool(getattr(TEMPLATE, "pooled", None))


def study_day_of(wildcards):
    """The sample's study day, when the sample sheet has one."""
    return int(SAMPLES.loc[wildcards.sample, "study_day"]) if "study_day" in SAMPLES.columns else None

PROCESSING_UNITS = {} if POOLED_GATES else processing_units(
    SAMPLES, batch_transforms=TRANSFORM_SCOPE == "batch", samples_per_job=config["processing"]["samples_per_job"])
# batches whose transforms rule fit_batch_transforms fits (the others are fitted in their unit's job)
BATCHES_FITTED_IN_UNITS = {b for unit in PROCESSING_UNITS.values() for b in unit["fitted_batches"]}
BATCHES_FITTED_ALONE = sorted(set(SAMPLES.batch.astype(str)) - BATCHES_FITTED_IN_UNITS)


# a sample's files by name: those preprocessing writes (rule preprocess_sample, beside its temporary events) and
# those gating writes (rule gate_sample); rule process_samples writes both
PREPROCESS_OUTPUTS = {"qc_row": "results/qc/{sample}.tsv", "qc_details": "results/qc/{sample}.json",
                      "qc_plot": "results/qc/{sample}.png", "metadata": "results/metadata/{sample}.json"}
GATE_OUTPUTS = {"populations": "results/populations/{sample}.tsv", "gates": "results/gates/{sample}.json",
                "review": "results/gates/{sample}.review.npz", "mfi": "results/populations/{sample}.mfi.tsv",
                "events": "results/anndata/events/{sample}.h5ad", **GATE_EXPORTS, **EXPORTS}


def sample_outputs(sample):
    """The files rule process_samples writes for one sample, by name."""
    return {name: path.format(sample=sample) for name, path in {**PREPROCESS_OUTPUTS, **GATE_OUTPUTS}.items()}


def rule_suffixes(names):
    """Rule-name suffixes for processing units: each name with characters other than letters, digits and _ as _,
    made unique with a trailing _ where two units would otherwise share one."""
    suffixes, taken = {}, set()
    for name in names:
        suffix = re.sub(r"\W", "_", name)
        while suffix in taken:
            suffix += "_"
        suffixes[name] = suffix
        taken.add(suffix)
    return suffixes


UNIT_RULE_SUFFIX = rule_suffixes(PROCESSING_UNITS)


def unit_mem_mb(samples):
    """mem_mb of a process_samples job: its largest sample's (one sample is in memory at a time)."""
    return lambda wildcards, attempt: max(sample_mem_mb(SimpleNamespace(sample=s), attempt) for s in samples)


def unit_runtime(samples):
    """Minutes for a process_samples job: the sum of its samples' (each as process_sample: twice sample_runtime)."""
    return lambda wildcards, attempt: sum(2 * sample_runtime(SimpleNamespace(sample=s), attempt)
                                          for s in samples)
