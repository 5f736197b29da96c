"""Time our gating against our reading, compensation and transform of one file, and against flowkit and a baseline.

Usage: python benchmarks/gating_speed.py [--events N [N ...]] [--repeats N] [--result NAME]
Per size (default 200,000 and 1,000,000 events): one simulated demo file, transforms fitted as the workflow does;
best of --repeats, one thread:
  ours       read, read + compensate, preprocess_fcs (+ transform + event QC), apply_template (places and applies
             the default template's gates on the QC-kept events);
  flowkit    our realised gates as GatingML, the QC-kept events as an FCS file: fk.Sample, gate_sample (compensate +
             transform + apply the fixed gates; also cache_events=True); memberships compared with ours; from that
             file, flowkit's read + gate_sample against our preprocess_fcs + apply_template (like with like), and
             gate_sample against our gating alone, each named;
  baseline   plain numpy read + inverse-spillover compensation and flowutils' logicle (not ours; not a bound).
Figures go to benchmarks/results/<--result>.json (commit, machine, date).
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


def numpy_flowutils_baseline(path: str, transforms: dict[str, dict], scatter: list[str],
                              timings: dict | None = None) -> np.ndarray:
    """Read + compensate + transform with plain numpy and flowutils' logicle (none of our code): the channels of
    ``transforms``, in order, after ``scatter``.

    ``transforms``: $PnN -> the var record of the channel (logicle t, w, m, a) for fluorescence channels;
    ``scatter`` are divided by their range. ``timings`` (if given) receives the seconds of the read + compensate
    and of the logicle parts (the least of repeated calls).
    """
    import flowutils

    start = time.perf_counter()
    keywords, data_start, _ = read_text(path)
    n_par, n_events = int(keywords["$PAR"]), int(keywords["$TOT"])
    if keywords["$DATATYPE"].upper() != "F":
        raise ValueError(f"{path}: the baseline reads float32 data only")
    dtype = np.dtype("<f4" if keywords["$BYTEORD"].strip() == "1,2,3,4" else ">f4")
    names = [keywords[f"$P{i}N"] for i in range(1, n_par + 1)]
    raw = np.fromfile(path, dtype=dtype, count=n_events * n_par, offset=data_start).reshape(n_events, n_par)
    spill = (keywords.get("$SPILLOVER") or keywords["SPILL"]).split(",")
    k = int(spill[0])
    detectors = spill[1:k + 1]
    matrix = np.array(spill[k + 1:], dtype=float).reshape(k, k)
    # (detectors x events): each channel's compensated values contiguous, as flowutils wants them
    compensated = np.linalg.inv(matrix).T @ raw[:, [names.index(d) for d in detectors]].T.astype(np.float64)
    out = np.empty((n_events, len(transforms) + len(scatter)), dtype=np.float32)
    for j, channel in enumerate(scatter):
        out[:, j] = raw[:, names.index(channel)] / float(keywords[f"$P{names.index(channel) + 1}R"])
    before_logicle = time.perf_counter()
    for j, (channel, p) in enumerate(transforms.items(), start=len(scatter)):
        out[:, j] = flowutils.transforms.logicle(np.ascontiguousarray(compensated[detectors.index(channel)]), None,
                                                 t=p["t"], m=p["m"], w=p["w"], a=p["a"])
    if timings is not None:
        timings["logicle_s"] = min(timings.get("logicle_s", np.inf), time.perf_counter() - before_logicle)
        timings["read_compensate_s"] = min(timings.get("read_compensate_s", np.inf), before_logicle - start)
    return out


def simulated_file(events: int, tmp: Path) -> str:
    """One file of the demo trial (the first patient's W4 sample) with ``events`` events, written under ``tmp``."""
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import SimulationSettings, trial_design

    patients, samples = trial_design(str(tmp / f"fcs{events}"), patients_per_cohort=1, visits=["W4"])
    patients, samples = patients.iloc[:1], samples.iloc[:1]
    simulate_trial(patients, samples, tmp / f"out{events}", SimulationSettings(events_per_sample=events))
    return str(samples.fcs.iloc[0])


def workflow_settings() -> tuple[dict, object, object]:
    """The demo's compensation / transform / QC settings, panel and adaptive gating template."""
    from cytotrial.gating.template import load_template
    from cytotrial.io.panel import Panel

    config = with_defaults(REPO / "config" / "config.yaml")  # the demo's settings over the defaults
    settings = {key: config.get(key) or {} for key in ("compensation", "transform", "qc")}
    return (settings, Panel.from_yaml(REPO / "config" / "panel.yaml"),
            load_template(REPO / "config" / "gating" / "default.yaml"))


def write_kept_events(fcs: str, keep: np.ndarray, path: Path) -> None:
    """The raw events of ``fcs`` where ``keep`` is True, as an FCS file with the same channels and spillover."""
    from cytotrial.io.fcs import read_fcs
    from cytotrial.io.fcs_writer import write_fcs

    full = read_fcs(fcs)
    meta = full.get_metadata()
    spill = meta.get("spillover", meta.get("spill"))
    keywords = {f"$P{i}R": meta[f"p{i}r"] for i in range(1, len(full.pnn_labels) + 1) if f"p{i}r" in meta}
    keywords.update({"$SPILLOVER": spill} if spill else {})
    keywords.update({"$TIMESTEP": meta["timestep"]} if "timestep" in meta else {})
    write_fcs(path, full.get_events(source="raw")[keep], list(full.pnn_labels),
              [s or None for s in full.pns_labels], keywords=keywords)


def run_size(events: int, repeats: int, tmp: Path) -> dict:
    import flowkit as fk

    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.gatingml_export import export_gatingml
    from cytotrial.io.fcs import read_fcs
    from cytotrial.preprocess.events import fit_batch_transforms, preprocess_fcs, read_compensated
    from cytotrial.quantify import realised_gates

    settings, panel, template = workflow_settings()
    fcs = simulated_file(events, tmp)
    batch = fit_batch_transforms([fcs], panel, settings["compensation"], settings["transform"], matrix_path=None,
                                 max_events_per_file=int(settings["transform"].get("max_events_per_file", 50_000)))

    t_read, _ = best_of(repeats, read_fcs, fcs)
    t_comp, _ = best_of(repeats, read_compensated, fcs, panel, settings["compensation"])
    t_pre, (adata, qc) = best_of(repeats, preprocess_fcs, fcs, "bench", panel, settings, 28, batch)
    keep = adata.obs["qc_keep"].to_numpy()
    kept = adata[keep].copy()
    t_gate, result = best_of(repeats, apply_template, kept, template)

    # flowkit on the same realised gates and the same (QC-kept) events, read from an FCS file of those events
    gml = tmp / f"gates{events}.xml"
    ids = export_gatingml(realised_gates(result, kept), kept.var, kept.uns["spillover"], gml)
    strategy = fk.parse_gating_xml(str(gml))
    kept_fcs = tmp / f"kept{events}.fcs"
    write_kept_events(fcs, keep, kept_fcs)
    t_fk_read, sample = best_of(repeats, fk.Sample, str(kept_fcs), sample_id="bench")
    t_fk, fk_results = best_of(repeats, strategy.gate_sample, sample)
    t_fk_cached, _ = best_of(repeats, strategy.gate_sample, sample, cache_events=True, before=strategy.clear_cache)
    strategy.clear_cache()
    differ = {name: int(np.count_nonzero(fk_results.get_gate_membership(gate_id) != result.masks[name]))
              for name, gate_id in ids.items()}
    worst = max(differ, key=lambda n: differ[n] / max(1, int(result.masks[n].sum())))

    # like with like from the kept-events file: read + compensate + transform + gate, ours and flowkit's
    def ours_whole() -> int:
        kept_adata, _ = preprocess_fcs(str(kept_fcs), "bench", panel, settings, study_day=28, batch_transforms=batch)
        kept_again = kept_adata.obs["qc_keep"].to_numpy()
        apply_template(kept_adata[kept_again].copy(), template)
        return int(kept_again.sum())

    def flowkit_whole() -> None:
        strategy.gate_sample(fk.Sample(str(kept_fcs), sample_id="bench"))
        strategy.clear_cache()

    t_ours_whole, whole_kept = best_of(repeats, ours_whole)
    t_fk_whole, _ = best_of(repeats, flowkit_whole)

    # plain numpy + flowutils baseline on the same channels, with the same transform parameters
    var = adata.var
    scatter = [c for c in var.channel if var.loc[c, "kind"] == "scatter"]
    fluorescence = {c: var.loc[c].to_dict() for c in var.channel if var.loc[c, "kind"] == "fluorescence"}
    parts: dict = {}
    t_base, base = best_of(repeats, numpy_flowutils_baseline, fcs, fluorescence, scatter, parts)
    order = [*scatter, *fluorescence]
    base_diff = float(np.max(np.abs(base - adata[:, order].X)))

    n, n_kept = adata.n_obs, int(keep.sum())
    print(f"\n{n} events x {adata.n_vars} channels ({n_kept} kept by the event QC, {qc.percent_removed:.2f} % "
          f"removed); best of {repeats}, one thread")
    print(f"  ours: read {t_read:.3f} s, read + compensate {t_comp:.3f} s, "
          f"read + compensate + transform + QC (preprocess_fcs) {t_pre:.3f} s")
    print(f"  ours: gating (apply_template: place + apply {len(result.gates)} gates)      {t_gate:7.3f} s")
    print(f"  flowkit {fk.__version__}: Sample (read) {t_fk_read:.3f} s; gate_sample (compensate + transform + "
          f"gate) {t_fk:.3f} s (cache_events=True: {t_fk_cached:.3f} s)")
    print(f"        {len(ids)} gates; memberships differing from ours: {sum(v > 0 for v in differ.values())} "
          f"gates, at most {differ[worst]} events ({worst})")
    print(f"  read + compensate + transform + gate from the kept-events file: ours {t_ours_whole:.3f} s "
          f"(with QC, placing gates; {whole_kept} events kept), flowkit {t_fk_whole:.3f} s: flowkit / ours {t_fk_whole / t_ours_whole:.2f}")
    print(f"  flowkit gate_sample / our gating alone  {t_fk / t_gate:.2f} (cache_events=True: "
          f"{t_fk_cached / t_gate:.2f})")
    print(f"  baseline numpy read + compensate {parts['read_compensate_s']:.3f} s + flowutils logicle "
          f"{parts['logicle_s']:.3f} s ({len(fluorescence)} channels) = {t_base:.3f} s; max |difference| from "
          f"preprocess {base_diff:.2g}")
    ratio = t_gate / t_pre
    print(f"  gating / (read+comp+transform+QC)  {ratio:6.2f}   target <= {GATING_TARGET:g}: "
          f"{'PASS' if ratio <= GATING_TARGET else 'FAIL'}")
    return {"events": n, "kept_events": n_kept, "channels": int(adata.n_vars), "populations": len(result.gates),
            "repeats": repeats,
            "ours_read_s": t_read, "ours_read_compensate_s": t_comp,
            "ours_read_compensate_transform_qc_s": t_pre,
            "ours_gating_place_and_apply_s": t_gate, "ours_gating_over_preprocess": ratio, "target": GATING_TARGET,
            "flowkit_version": fk.__version__, "flowkit_sample_read_s": t_fk_read,
            "flowkit_gate_sample_compensate_transform_gate_s": t_fk,
            "flowkit_gate_sample_cache_events_s": t_fk_cached,
            "flowkit_gate_sample_over_our_gating": t_fk / t_gate,
            "flowkit_gates_differing": int(sum(v > 0 for v in differ.values())),
            "flowkit_max_events_differing": int(differ[worst]),
            "kept_file_ours_read_compensate_transform_qc_gate_s": t_ours_whole,
            "kept_file_ours_events_kept_by_qc": whole_kept,
            "kept_file_flowkit_read_compensate_transform_gate_s": t_fk_whole,
            "kept_file_flowkit_over_ours": t_fk_whole / t_ours_whole,
            "baseline_numpy_read_compensate_s": parts["read_compensate_s"],
            "baseline_flowutils_logicle_s": parts["logicle_s"],
            "baseline_numpy_flowutils_read_compensate_transform_s": t_base,
            "baseline_max_abs_difference_from_ours": base_diff}


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
        print(f"figures: {write_result(args.result, {'sizes': sizes, 'threads': 1, 'command': ' '.join(sys.argv)})}")


if __name__ == "__main__":
    main()
