# Config validation, sample sheet loading and input functions shared by all rules.

from pathlib import Path

from snakemake.utils import min_version, validate

from cytotrial.sheets import load_patients, load_samples

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")

PATIENTS = load_patients(config["patients"])
validate(PATIENTS, schema="../schemas/patients.schema.yaml")
SAMPLES = load_samples(config["samples"], config["visits"], PATIENTS).set_index("sample_id", drop=False)
validate(SAMPLES, schema="../schemas/samples.schema.yaml")
DEMO = config.get("demo", {"enabled": False})

if config["baseline_visit"] not in config["visits"]:
    raise ValueError(
        f"config: baseline_visit '{config['baseline_visit']}' is not one of visits {config['visits']}"
    )


wildcard_constraints:
    sample="|".join(sorted(SAMPLES.index)),


def fcs_of(wildcards):
    return SAMPLES.loc[wildcards.sample, "fcs"]


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
