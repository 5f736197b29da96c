"""Time the demo-trial simulator: the full design (18 patients x 7 visits) at 200,000 events per file.

Usage: python benchmarks/simulator.py [--events N] [--workers N] [--out DIR]
Prints wall time, files, events, bytes written and throughput. Target: < 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cytotrial.simulate.run import simulate_trial
from cytotrial.simulate.trial import SimulationSettings, trial_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="cytotrial-bench-"))
    patients, samples = trial_design(str(out / "fcs"))
    start = time.perf_counter()
    simulate_trial(patients, samples, out, SimulationSettings(events_per_sample=args.events), workers=args.workers)
    wall = time.perf_counter() - start
    size = sum(f.stat().st_size for f in (out / "fcs").glob("*.fcs"))
    print(f"files: {len(samples)}  events/file: {args.events}  workers: {args.workers}")
    print(f"wall time: {wall:.1f} s  ({wall / len(samples):.2f} s per file)")
    print(f"FCS bytes: {size / 2**30:.2f} GiB  throughput: {len(samples) * args.events / wall / 1e6:.2f} M events/s")
    if args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
