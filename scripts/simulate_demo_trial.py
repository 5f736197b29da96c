"""Rule simulate_demo_trial: write the demo trial's FCS files, ground truth and clinical tables."""

from pathlib import Path

from cytotrial.steps.runlog import rule_logging
from cytotrial.io.sheets import load_patients, load_samples
from cytotrial.simulate.controls import simulate_single_stain_controls
from cytotrial.simulate.run import simulate_trial
from cytotrial.simulate.trial import VISIT_DAYS, SimulationSettings

with rule_logging(snakemake) as log:
    patients = load_patients(snakemake.input.patients)
    samples = load_samples(snakemake.input.samples, list(VISIT_DAYS), patients)
    settings = SimulationSettings(**snakemake.params.settings)
    log.info("simulating %d samples with %s on %d threads", len(samples), settings, snakemake.threads)
    simulate_trial(patients, samples, snakemake.params.out_dir, settings, workers=snakemake.threads)
    controls = simulate_single_stain_controls(Path(snakemake.output.controls).parent, seed=settings.seed)
    log.info("wrote %d single-stain control files", len(controls))
