"""Speed and agreement of cytotrial.preprocess.logicle.FastLogicle against flowkit / flowutils logicle.

Usage: python benchmarks/logicle_speed.py [--sizes N [N ...]] [--repeats R] [--result NAME]

For each size (default 100,000 and 1,000,000 values) and 3 parameter sets, on realistic compensated data
(35 % negatives/spread around 0, normal with sd 60; 65 % positives log-normal between ~1e2 and ~1e5; a few
exact zeros), prints ns/value (best of --repeats, wall clock, single thread) of

  flowkit    fk.transforms.LogicleTransform(...).apply(x.reshape(-1, 1))  (copies + flowutils' C logicle)
  flowutils  flowutils.logicle_c.logicle_scale on a copy of x              (the raw C call)
  fast       FastLogicle(t, w, m, a).apply(x)                              (table built beforehand)

the speed-up of fast over flowkit and over the raw flowutils call, the max |fast - flowkit| and the number of
values that differ after casting both to float32. The time to build the table is printed once per parameter set.
No assertions: timings depend on the machine and on other jobs. --result NAME writes the figures to
benchmarks/results/NAME.json (commit, machine, date).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import flowkit as fk  # noqa: E402
from flowutils import logicle_c  # noqa: E402

from cytotrial.preprocess.logicle import FastLogicle  # noqa: E402

PARAMETER_SETS = [
    # (t, w, m, a)
    (262144.0, 0.5, 4.5, 0.0),
    (262144.0, 0.0, 4.5, 0.0),
    (262144.0, 1.8, 4.5, 0.5),
]


def compensated_values(n: int, seed: int = 0) -> np.ndarray:
    """Realistic compensated fluorescence: negatives/spread near 0 and positives 1e2..1e5, a few zeros."""
    rng = np.random.default_rng(seed)
    near_zero = rng.random(n) < 0.35
    values = np.where(near_zero, rng.normal(0.0, 60.0, n), np.exp(rng.normal(np.log(3e3), 1.4, n)))
    values[rng.random(n) < 0.001] = 0.0
    return values


def best_time(function, repeats: int) -> float:
    """Best wall-clock time of ``function()`` over ``repeats`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    args = parser.parse_args()
    rows = []

    print(f"flowkit {fk.__version__}, numpy {np.__version__}; best of {args.repeats}, ns/value")
    header = (f"{'n':>9} {'t':>8} {'w':>4} {'m':>4} {'a':>4} | {'flowkit':>8} {'flowutils':>9} {'fast':>7} | "
              f"{'x flowkit':>9} {'x flowutils':>11} | {'max |diff|':>10} {'f32 diff':>8}")
    for t, w, m, a in PARAMETER_SETS:
        build_seconds = best_time(lambda: FastLogicle(t, w, m, a), 5)
        rows.append({"t": t, "w": w, "m": m, "a": a, "table_build_s": build_seconds, "sizes": []})
        print(f"\nt={t:g} w={w:g} m={m:g} a={a:g}: table built in {build_seconds * 1e3:.2f} ms")
        print(header)
        transform = fk.transforms.LogicleTransform(param_t=t, param_w=w, param_m=m, param_a=a)
        fast = FastLogicle(t, w, m, a)
        for n in args.sizes:
            x = compensated_values(n)
            column = x.reshape(-1, 1)

            def raw_flowutils() -> np.ndarray:
                y = x.copy()
                logicle_c.logicle_scale(t, w, m, a, y)
                return y

            reference = transform.apply(column).ravel()
            result = fast.apply(x)
            assert np.array_equal(raw_flowutils(), reference, equal_nan=True)
            seconds = {
                "flowkit": best_time(lambda: transform.apply(column), args.repeats),
                "flowutils": best_time(raw_flowutils, args.repeats),
                "fast": best_time(lambda: fast.apply(x), args.repeats),
            }
            ns = {name: s / n * 1e9 for name, s in seconds.items()}
            max_diff = float(np.max(np.abs(result - reference)))
            f32_diff = int(np.count_nonzero(result.astype(np.float32) != reference.astype(np.float32)))
            print(f"{n:>9,} {t:>8g} {w:>4g} {m:>4g} {a:>4g} | {ns['flowkit']:>8.1f} {ns['flowutils']:>9.1f} "
                  f"{ns['fast']:>7.1f} | {ns['flowkit'] / ns['fast']:>8.1f}x {ns['flowutils'] / ns['fast']:>10.1f}x | "
                  f"{max_diff:>10.2e} {f32_diff:>8d}")
            rows[-1]["sizes"].append({"values": n, "ns_per_value": ns, "max_abs_difference_fast_flowkit": max_diff,
                                      "float32_values_differing": f32_diff})
    if args.result:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_record import write_result

        print(f"figures: {write_result(args.result, {'command': ' '.join(sys.argv), 'repeats': args.repeats, 'parameter_sets': rows})}")


if __name__ == "__main__":
    main()
