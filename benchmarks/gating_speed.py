"""Time gating against reading, compensating and transforming one file; compare with flowkit and a numpy bound.

Usage: python benchmarks/gating_speed.py [--events N [N ...]] [--repeats N] [--result NAME]
For each size (default 200,000 and 1,000,000 events), simulates one file of the demo trial, fits its transforms
with the workflow settings (config/config.yaml, as a batch of one file) and times, best of --repeats (default 3)
in this process:
  (a) preprocess    read + compensate + transform + event QC (cytotrial.preprocess.events.preprocess_fcs), with the
                    read and read + compensate parts on their own for reference;
  (b) our gating    apply_template(QC-kept events, config/gating/default.yaml);
  (c) flowkit       GatingStrategy.gate_sample of flowkit on the same realised gates (export_gatingml, read back
                    with fk.parse_gating_xml) and the same QC-kept events (as an fk.Sample); flowkit compensates
                    and transforms inside gate_sample; also with cache_events=True;
  (d) numpy bound   header + TEXT parse, np.fromfile of the DATA segment at its offset, matmul of the detector
                    columns with the inverse spillover, flowutils' logicle of the fluorescence columns and scatter
                    / range (no QC, no checks): the least any reader + compensation + transform must do.
Prints the times and the ratios gating / preprocess (target <= 2), flowkit gating / our gating and preprocess /
numpy bound; checks that flowkit's memberships and the numpy bound's values equal ours.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one core, as the workflow's jobs run (before numpy is imported)

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cytotrial.config import with_defaults

REPO = Path(__file__).resolve().parents[1]
GATING_TARGET = 2.0


def best_of(repeats: int, fn, *args, before=None, **kwargs) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def read_text(path: str) -> tuple[dict[str, str], int, int]:
    """TEXT keywords and the DATA segment's offsets of a (single data set) FCS file."""
    with open(path, "rb") as handle:
        header = handle.read(58)
        text_start, text_end, data_start, data_end = (int(header[i:i + 8]) for i in range(10, 42, 8))
        handle.seek(text_start)
        raw = handle.read(text_end - text_start + 1).decode("latin-1")
    delimiter = raw[0]
    fields = raw[1:].rstrip(delimiter).split(delimiter)
    keywords = {fields[i].upper(): fields[i + 1] for i in range(0, len(fields) - 1, 2)}
    if data_start == 0 or data_end == 0:
        data_start, data_end = int(keywords["$BEGINDATA"]), int(keywords["$ENDDATA"])
    return keywords, data_start, data_end


def numpy_bound(path: str, transforms: dict[str, dict], scatter: list[str], timings: dict | None = None
                ) -> np.ndarray:
    """Read + compensate + transform with plain numpy and the fastest logicle we have (FastLogicle, a table of
    flowutils' values, ~10x faster than flowutils' C per value): the channels of ``transforms``, in order.

    ``transforms``: $PnN -> the var record of the channel (logicle t, w, m, a) for fluorescence channels;
    ``scatter`` are divided by their range. ``timings`` (if given) receives the seconds of the logicle part.
    """
    from cytotrial.preprocess.logicle import FastLogicle

    start = time.perf_counter()
    keywords, data_start, _ = read_text(path)
    n_par, n_events = int(keywords["$PAR"]), int(keywords["$TOT"])
    if keywords["$DATATYPE"].upper() != "F":
        raise ValueError(f"{path}: the numpy bound reads float32 data only")
    dtype = np.dtype("<f4" if keywords["$BYTEORD"].strip() == "1,2,3,4" else ">f4")
    names = [keywords[f"$P{i}N"] for i in range(1, n_par + 1)]
    raw = np.fromfile(path, dtype=dtype, count=n_events * n_par, offset=data_start).reshape(n_events, n_par)
    spill = (keywords.get("$SPILLOVER") or keywords["SPILL"]).split(",")
    k = int(spill[0])
    detectors = spill[1:k + 1]
    matrix = np.array(spill[k + 1:], dtype=float).reshape(k, k)
    # (detectors x events): each channel's compensated values contiguous, as logicle wants them
    compensated = np.linalg.inv(matrix).T @ raw[:, [names.index(d) for d in detectors]].T.astype(np.float64)
    out = np.empty((n_events, len(transforms) + len(scatter)), dtype=np.float32)
    for j, channel in enumerate(scatter):
        out[:, j] = raw[:, names.index(channel)] / float(keywords[f"$P{names.index(channel) + 1}R"])
    before_logicle = time.perf_counter()
    for j, (channel, p) in enumerate(transforms.items(), start=len(scatter)):
        out[:, j] = FastLogicle(p["t"], p["w"], p["m"], p["a"]).apply(compensated[detectors.index(channel)])
    if timings is not None:
        timings["logicle_s"] = min(timings.get("logicle_s", np.inf), time.perf_counter() - before_logicle)
        timings["before_logicle_s"] = min(timings.get("before_logicle_s", np.inf), before_logicle - start)
    return out


def run_size(events: int, repeats: int, tmp: Path) -> dict:
    import flowkit as fk

    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.gatingml_export import export_gatingml
    from cytotrial.gating.template import load_template
    from cytotrial.io.fcs import read_fcs
    from cytotrial.io.fcs_writer import write_fcs
    from cytotrial.io.panel import Panel
    from cytotrial.preprocess.events import fit_batch_transforms, preprocess_fcs, read_compensated
    from cytotrial.quantify import realised_gates
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import SimulationSettings, trial_design

    config = with_defaults(REPO / "config" / "config.yaml")  # the demo's settings over the defaults
    settings = {key: config.get(key) or {} for key in ("compensation", "transform", "qc")}
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    template = load_template(REPO / "config" / "gating" / "default.yaml")

    patients, samples = trial_design(str(tmp / f"fcs{events}"), patients_per_cohort=1, visits=["W4"])
    patients, samples = patients.iloc[:1], samples.iloc[:1]
    simulate_trial(patients, samples, tmp / f"out{events}", SimulationSettings(events_per_sample=events))
    fcs = str(samples.fcs.iloc[0])
    batch = fit_batch_transforms([fcs], panel, settings["compensation"], settings["transform"], matrix_path=None,
                                 max_events_per_file=int(settings["transform"].get("max_events_per_file", 50_000)))

    t_read, _ = best_of(repeats, read_fcs, fcs)
    t_comp, _ = best_of(repeats, read_compensated, fcs, panel, settings["compensation"])
    t_pre, (adata, qc) = best_of(repeats, preprocess_fcs, fcs, "bench", panel, settings, study_day=28,
                                 batch_transforms=batch)
    keep = adata.obs["qc_keep"].to_numpy()
    kept = adata[keep].copy()
    t_gate, result = best_of(repeats, apply_template, kept, template)

    # flowkit on the same realised gates and the same (QC-kept) events
    gml = tmp / f"gates{events}.xml"
    ids = export_gatingml(realised_gates(result, kept), kept.var, kept.uns["spillover"], gml)
    strategy = fk.parse_gating_xml(str(gml))
    full = read_fcs(fcs)
    kept_fcs = tmp / f"kept{events}.fcs"
    write_fcs(kept_fcs, full.get_events(source="raw")[keep], list(full.pnn_labels),
              [s or None for s in full.pns_labels], keywords={})
    sample = fk.Sample(str(kept_fcs), sample_id="bench")
    t_fk, fk_results = best_of(repeats, strategy.gate_sample, sample)
    t_fk_cached, _ = best_of(repeats, strategy.gate_sample, sample, cache_events=True, before=strategy.clear_cache)
    strategy.clear_cache()
    differ = {name: int(np.count_nonzero(fk_results.get_gate_membership(gate_id) != result.masks[name]))
              for name, gate_id in ids.items()}
    worst = max(differ, key=lambda n: differ[n] / max(1, int(result.masks[n].sum())))

    # numpy lower bound on the same channels, with the same transform parameters
    var = adata.var
    scatter = [c for c in var.channel if var.loc[c, "kind"] == "scatter"]
    fluorescence = {c: var.loc[c].to_dict() for c in var.channel if var.loc[c, "kind"] == "fluorescence"}
    parts: dict = {}
    t_bound, bound = best_of(repeats, numpy_bound, fcs, fluorescence, scatter, parts)
    order = [*scatter, *fluorescence]
    bound_diff = float(np.max(np.abs(bound - adata[:, order].X)))

    n, n_kept = adata.n_obs, int(keep.sum())
    print(f"\n{n} events x {adata.n_vars} channels ({n_kept} kept by the event QC, {qc.percent_removed:.2f} % "
          f"removed); best of {repeats}")
    print(f"  (a) read + compensate + transform + QC (preprocess_fcs)   {t_pre:7.3f} s")
    print(f"        of which read (read_fcs) {t_read:.3f} s, read + compensate (read_compensated) {t_comp:.3f} s")
    print(f"  (b) our gating (apply_template, {len(result.gates)} populations)       {t_gate:7.3f} s")
    print(f"  (c) flowkit {fk.__version__} GatingStrategy.gate_sample            {t_fk:7.3f} s"
          f"   (cache_events=True: {t_fk_cached:.3f} s)")
    print(f"        {len(ids)} gates exported; memberships differing from ours: {sum(v > 0 for v in differ.values())} "
          f"gates, at most {differ[worst]} events ({worst}, {differ[worst] / max(1, int(result.masks[worst].sum())):.3%})")
    print(f"  (d) numpy bound (fromfile + inverse-spillover matmul + logicle) {t_bound:7.3f} s"
          f"   (max |difference| from preprocess: {bound_diff:.2g})")
    print(f"        of which read + compensate {parts['before_logicle_s']:.3f} s, logicle {parts['logicle_s']:.3f} s "
          f"({len(fluorescence)} channels)")
    ratio = t_gate / t_pre
    print(f"  gating / (read+comp+transform+QC)  {ratio:6.2f}   target <= {GATING_TARGET:g}: "
          f"{'PASS' if ratio <= GATING_TARGET else 'FAIL'}")
    print(f"  flowkit gating / our gating        {t_fk / t_gate:6.2f}   (cache_events=True: {t_fk_cached / t_gate:.2f})")
    print(f"  preprocess / numpy bound           {t_pre / t_bound:6.2f}")
    print(f"  throughput: preprocess {n / t_pre / 1e6:.2f} M events/s, gating {n_kept / t_gate / 1e6:.2f} M events/s, "
          f"numpy bound {n / t_bound / 1e6:.2f} M events/s")
    return {"events": n, "kept_events": n_kept, "channels": int(adata.n_vars), "populations": len(result.gates),
            "repeats": repeats, "read_s": t_read, "read_compensate_s": t_comp, "preprocess_s": t_pre,
            "gating_s": t_gate, "gating_over_preprocess": ratio, "target": GATING_TARGET,
            "flowkit_gate_sample_s": t_fk, "flowkit_cached_s": t_fk_cached,
            "flowkit_gates_differing": int(sum(v > 0 for v in differ.values())),
            "flowkit_max_events_differing": int(differ[worst]), "numpy_bound_s": t_bound}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cytotrial-speed-") as tmp:
        sizes = [run_size(events, args.repeats, Path(tmp)) for events in args.events]
    if args.result:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_record import write_result
        print(f"figures: {write_result(args.result, {'sizes': sizes, 'threads': 1})}")


if __name__ == "__main__":
    main()
