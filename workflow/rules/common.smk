# Config validation, sample sheet loading and input functions shared by all rules.

import re
from pathlib import Path

from snakemake.utils import min_version, validate

from cytotrial.gating.overrides import load_overrides
from cytotrial.gating.plan_engine import StaticTemplate, load_gating_template, review_file_names
from cytotrial.io.deid import check_extra_whitelist
from cytotrial.qc import QcSettings
from cytotrial.sheets import load_patients, load_samples

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")

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
check_extra_whitelist(config.get("deidentification", {}).get("extra_whitelist", []))
TEMPLATE = load_gating_template(config["gating_template"], config.get("gating_workspace_group", "All Samples"))
# an adaptive template's gates differ per sample: each sample's are exported for FlowJo (static ones are the template)
GATE_EXPORTS = {"gatingml": "results/gates/{sample}.gatingml.xml", "workspace": "results/gates/{sample}.wsp"}
if isinstance(TEMPLATE, StaticTemplate):
    GATE_EXPORTS = {}
REVIEW_FIGURES = review_file_names(TEMPLATE.names)  # file name -> population (gate ids may hold any character)
OVERRIDES = load_overrides(config.get("gating_overrides"), TEMPLATE, set(SAMPLES.index))

ABSOLUTE_REFERENCES = config.get("absolute_counts", {}).get("references", [])
if any("column" in ref for ref in ABSOLUTE_REFERENCES) and not config["clinical"].get("blood_counts"):
    raise ValueError("config: absolute_counts references blood-count columns, but clinical.blood_counts names no "
                     "table. Add the table (sample_id and cells/uL columns) or remove the references.")
DISCOVERY = config.get("discovery", {}).get("enabled", True)
DISCOVERY_FIGURES = ["umap_clusters", "umap_visit_response", "umap_markers", "heatmap_leiden", "heatmap_flowsom"]

if config["baseline_visit"] not in config["visits"]:
    raise ValueError(
        f"config: baseline_visit '{config['baseline_visit']}' is not one of visits {config['visits']}"
    )


wildcard_constraints:
    sample="|".join(sorted(SAMPLES.index)),
    figure="|".join(sorted(map(re.escape, REVIEW_FIGURES))),


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
    return sorted(SAMPLES.loc[SAMPLES.batch == wildcards.batch, "fcs"])


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
