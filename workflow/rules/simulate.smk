# The built-in demo trial: FCS files, ground truth and clinical tables written by the simulator.

if DEMO["enabled"]:

    rule simulate_demo_trial:
        input:
            samples=config["samples"],
            patients=config["patients"],
        output:
            fcs=demo_fcs_files(),
            truth=f"{DEMO['output_dir']}/truth/frequencies.tsv",
            responses=f"{DEMO['output_dir']}/truth/patients.tsv",
            platelets=config["clinical"]["platelets"],
            blood_counts=config["clinical"]["blood_counts"] or f"{DEMO['output_dir']}/clinical/blood_counts.tsv",
            controls=f"{DEMO['output_dir']}/controls/controls.tsv",
        params:
            settings={k: v for k, v in DEMO.items() if k not in ("enabled", "output_dir")},
            out_dir=lambda wildcards, output: str(Path(output.truth).parent.parent),
        threads: 8
        resources:
            # peak RSS of the demo (126 files x 200,000 events) with 8 workers: 1.9 GB
            mem_mb=lambda wildcards, threads, attempt: (1000 + 250 * threads) * attempt,
            runtime=lambda wildcards, attempt: 60 * attempt,
        conda:
            "../envs/cytotrial.yaml"
        log:
            "logs/simulate_demo_trial.log",
        benchmark:
            "results/benchmarks/simulate_demo_trial.tsv"
        script:
            "../../scripts/simulate_demo_trial.py"
