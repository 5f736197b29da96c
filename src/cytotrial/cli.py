"""Command line: ``cytotrial init`` makes a project folder from FCS files; ``cytotrial simulate`` writes the demo
trial (FCS files, truth, clinical tables)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .init_project import DEFAULT_PATTERN, InitError, init_project
from .io.sheets import load_patients, load_samples
from .io.tables import write_tsv
from .simulate.run import simulate_trial
from .simulate.trial import VISIT_DAYS, SimulationSettings, trial_design
from .simulate.variability import SCENARIOS


def _simulate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    settings = SimulationSettings(seed=args.seed, events_per_sample=args.events, drift_sd=args.drift_sd,
                                  treg_rise_responders=args.treg_rise, variability=args.variability)
    if args.samples:
        patients = load_patients(args.patients)
        samples = load_samples(args.samples, list(VISIT_DAYS), patients)
    else:
        patients, samples = trial_design(str(out / "fcs"), args.patients_per_cohort, args.visits)
        write_tsv(patients, out / "patients.tsv")
        write_tsv(samples, out / "samples.tsv")
    simulate_trial(patients, samples, out, settings, workers=args.workers)
    print(f"wrote {len(samples)} FCS files for {len(patients)} patients under {out}")
    return 0


def _init(args: argparse.Namespace) -> int:
    report = init_project(args.fcs_dir, args.out, pattern=args.pattern, pattern_keyword=args.pattern_keyword,
                          visits=args.visits, clinical=args.clinical, baseline_day=args.baseline_day,
                          force=args.force, template=args.template)
    print(report.text())
    print(f"wrote the project to {args.out} (this report: {Path(args.out) / 'init_report.txt'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cytotrial", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="make a project folder from a folder of FCS files (reads HEADER and "
                                            "TEXT only)")
    init.add_argument("fcs_dir", help="folder of FCS files (sub-folders searched too)")
    init.add_argument("--out", required=True, help="project folder to write")
    init.add_argument("--pattern", default=DEFAULT_PATTERN,
                      help="regular expression with named groups patient and visit (and optionally date), searched "
                           f"in each file name without extension (default {DEFAULT_PATTERN!r})")
    init.add_argument("--pattern-keyword", help="search the pattern in this TEXT keyword (e.g. '$SRC') instead")
    init.add_argument("--visits", nargs="+", help="visits in study order (default: ordered by acquisition date)")
    init.add_argument("--clinical", help="table (TSV/CSV) with patient_id and any of cohort, dose_1e6_per_kg or "
                                         "dose_per_kg (cells/kg), day0_date")
    init.add_argument("--baseline-day", type=int, default=0,
                      help="study day of the baseline visit, when no day0_date is given (default 0)")
    init.add_argument("--template", help="gating template to copy (default: the workflow's)")
    init.add_argument("--force", action="store_true", help="overwrite an existing project config")
    init.set_defaults(run=_init)
    simulate = commands.add_parser("simulate", help="write the demo trial: FCS files, ground truth, clinical tables")
    simulate.add_argument("--out", required=True, help="output folder")
    simulate.add_argument("--samples", help="sample sheet to simulate (default: the built-in trial design)")
    simulate.add_argument("--patients", help="patient table to go with --samples")
    simulate.add_argument("--patients-per-cohort", type=int, default=None,
                          help="first N patients of each cohort only (default: all 18)")
    simulate.add_argument("--visits", nargs="+", default=None, choices=list(VISIT_DAYS), help="visits (default: all)")
    simulate.add_argument("--events", type=int, default=200_000, help="events per file (default 200000)")
    simulate.add_argument("--seed", type=int, default=SimulationSettings.seed)
    simulate.add_argument("--drift-sd", type=float, default=0.0,
                          help="log-SD of detector gains between acquisition runs (default 0: no drift)")
    simulate.add_argument("--variability", default="stable", choices=sorted(SCENARIOS),
                          help="how labs, patients, days and acquisitions vary (default stable; none: the classic "
                               "fixed phenotypes; shifted: day-to-day detector, scatter and staining shifts; dirty: "
                               "shifted plus clogs, heavy debris and dead cells, short acquisitions)")
    simulate.add_argument("--treg-rise", type=float, default=SimulationSettings.treg_rise_responders,
                          help="relative Treg rise in responders at the peak (default 0.5)")
    simulate.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    simulate.set_defaults(run=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "samples", None) and not args.patients:
        print("cytotrial simulate: --samples needs --patients", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (InitError, ValueError, FileNotFoundError) as err:
        print(f"cytotrial: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
