"""Benchmark: Dual Lagrangian Learning proxies (cvxkit DualProxy) against Clarabel per instance.

Classes (Tanneau & Van Hentenryck, NeurIPS 2024; generators in cvxkit.problems.parametric_conic):

* ``knapsack``: the paper's continuous multi-dimensional knapsack LP, ``--knapsack M N``
  (the paper: m in {5, 10, 30} x n in {100, 200, 500}; default 5 x 100, its smallest).
* ``production``: the paper's production planning with rotated cones, ``--production N``
  (the paper: n in {10, ..., 1000}; default 10).
* ``portfolio``: a portfolio SOCP built through the CVXPY front end (not in the paper; it
  exercises the SOC projection layer), ``--portfolio N``.

For each class: ``--train`` training parameter draws (fit for ``--epochs``), ``--test`` held-out
draws (default 1000) solved one by one by Clarabel (tolerance 1e-9, through one DPP-compiled
CVXPY model). Reported: mean / median / max optimality gap ``(OPT - bound) / |OPT|`` on the
held-out set; ``invalid``: bounds above ``OPT + 1e-7 (1 + |OPT|)`` (the reference is itself only
accurate to ~1e-9 relative; ``invalid_abs`` counts ``bound > OPT + 1e-7``); time per instance of
the batched certified bound (one jitted vmapped call over the whole test set, compile apart,
best of ``--repeat``) vs the median over instances of Clarabel's own solve time and of the wall
time of a CVXPY + Clarabel re-solve (means stored in the JSON); the ratios are measured in the
same run.

The machine may be shared: repeat, and read ratios rather than absolute times. On a GPU host
(``pip install jax[cuda]``) the same script trains and evaluates there; ``--dtype float64``
trains in double precision (the bound is always evaluated in float64).

    python benchmarks/dual_proxies.py                        # all classes, defaults
    python benchmarks/dual_proxies.py --classes knapsack --knapsack 10 200 --epochs 500
    python benchmarks/dual_proxies.py --defaults --classes knapsack production portfolio lp lp1 lp2 socp \
        --out benchmarks/results/dual_proxies_defaults.json

``--defaults`` measures what a user gets from ``DualProxy(prob).fit(thetas)`` with every
training setting at its default. It adds generic classes: ``lp``, ``lp1``, ``lp2`` (a 12-variable
covering LP ``A x >= theta``, ``0 <= x <= 5``, theta uniform in [0, 1]^8, 2000 training draws,
``A`` drawn from seed 0, 1, 2) and ``socp`` (10 variables, one 7-dimensional SOC).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from common import best_of, write_results

from cvxkit.problems.parametric_conic import (multidimensional_knapsack, portfolio,
                                              production_planning)
from cvxkit.problems import DualProxy, ParametricConicProgram

#: the paper's headline (abstract, verified): average optimality gaps under 0.5%
PAPER_MEAN_GAP = 0.005


def generic_lp(seed, n=12, m=8):
    """A generic parametric covering LP as a user would write it: ``min c'x`` s.t.
    ``A x >= theta``, ``0 <= x <= 5``, ``theta`` uniform in ``[0, 1]^m``; ``A`` uniform in
    ``[0, 1]`` and ``c`` uniform in ``[0.1, 1]``, both drawn from ``seed`` (not tuned)."""
    rng = np.random.default_rng(seed)
    A, c = rng.uniform(0.0, 1.0, (m, n)), rng.uniform(0.1, 1.0, n)

    def sampler(rng_, k):
        return rng_.uniform(0.0, 1.0, (k, m))

    return ParametricConicProgram.from_arrays(
        c, A, (np.zeros(m), -np.eye(m)), [("nonneg", m)], n_params=m, lb=0.0, ub=5.0,
        theta=np.full(m, 0.5), sampler=sampler, name=f"LP {n} vars x {m} rows (A seed {seed})")


def generic_socp(seed, n=10, k=6):
    """A generic parametric SOCP: ``min c'x`` s.t. ``||F x - theta||_2 <= 1``, ``-3 <= x <= 3``,
    ``theta`` uniform in ``[-1, 1]^k``; ``F`` standard normal / sqrt(n), ``c`` standard normal,
    drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    F, c = rng.standard_normal((k, n)) / np.sqrt(n), rng.standard_normal(n)
    A = np.vstack([np.zeros((1, n)), F])            # (t, s) = (1, F x - theta) in Q^{k+1}
    J = np.vstack([np.zeros((1, k)), -np.eye(k)])
    b0 = np.concatenate([[1.0], np.zeros(k)])

    def sampler(rng_, size):
        return rng_.uniform(-1.0, 1.0, (size, k))

    return ParametricConicProgram.from_arrays(
        c, A, (b0, J), [("soc", k + 1)], n_params=k, lb=-3.0, ub=3.0, theta=np.zeros(k),
        sampler=sampler, name=f"SOCP {n} vars, SOC {k + 1} (F seed {seed})")


def build(name, args):
    if name.startswith("lp"):                        # lp, lp1, lp2: the seed of A
        return generic_lp(int(name[2:] or 0))
    if name.startswith("socp"):
        return generic_socp(int(name[4:] or 0))
    if name == "knapsack":
        return multidimensional_knapsack(*args.knapsack, seed=args.seed)
    if name == "production":
        return production_planning(args.production, seed=args.seed)
    if name == "portfolio":
        return portfolio(args.portfolio, seed=args.seed)[0]
    raise ValueError(f"unknown class {name!r}")


def run_class(name, args):
    import jax

    prob = build(name, args)
    n_train = args.train
    if args.defaults and name.startswith(("lp", "socp")):
        n_train = 2000                               # the generic LP: 2,000 draws
    train = prob.sample(n_train, seed=args.seed + 1)
    test = prob.sample(args.test, seed=args.seed + 2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        ref = prob.reference_solve(test)
    ref_total = time.perf_counter() - t0
    ok = np.array([s == "optimal" for s in ref["status"]])
    hidden = tuple(args.hidden) if args.hidden else None
    if args.defaults:                               # what a user gets: DualProxy(prob).fit(T)
        px = DualProxy(prob)
        untrained = px.bound(test)
        t0 = time.perf_counter()
        px.fit(train, verbose=args.verbose)
    else:
        px = DualProxy(prob, hidden=hidden, activation=args.activation, seed=args.seed,
                       dtype=args.dtype)
        untrained = px.bound(test)
        t0 = time.perf_counter()
        px.fit(train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
               verbose=args.verbose)
    fit_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    bound = px.bound(test)                    # compiles for this batch size
    compile_time = time.perf_counter() - t0
    bound, t_batch = best_of(args.repeat, lambda: px.bound(test))
    opt = ref["objective"][ok]
    b, b0 = bound[ok], untrained[ok]
    gap = (opt - b) / np.abs(opt)
    slack = 1e-7 * (1 + np.abs(opt))
    per_bound = t_batch / len(test)
    # medians: robust to the scheduling spikes of a shared machine (means are stored too)
    clar = float(np.nanmedian(ref["solver_time"][ok]))
    wall = float(np.median(ref["wall_time"][ok]))
    row = {
        "class": name, "instance": prob.name, "n": prob.n, "m": prob.m, "p": prob.p,
        "train": n_train, "test": int(ok.sum()),
        "epochs": int(len(px.history.get("epoch", []))),
        "validation_gap": getattr(px, "validation_gap_", None),
        "hidden": list(px.hidden), "fit_s": fit_time, "compile_s": compile_time,
        "gap_mean": float(gap.mean()), "gap_median": float(np.median(gap)),
        "gap_max": float(gap.max()),
        "gap_mean_untrained": float(((opt - b0) / np.abs(opt)).mean()),
        "invalid": int(np.sum(b > opt + slack)), "invalid_abs": int(np.sum(b > opt + 1e-7)),
        "invalid_untrained": int(np.sum(b0 > opt + slack)),
        "non_finite": int(np.sum(~np.isfinite(b))),
        "bound_s_per_instance": per_bound, "clarabel_solver_s": clar, "clarabel_wall_s": wall,
        "clarabel_solver_mean_s": float(np.nanmean(ref["solver_time"][ok])),
        "clarabel_wall_mean_s": float(np.mean(ref["wall_time"][ok])),
        "speedup_vs_solver": clar / per_bound, "speedup_vs_wall": wall / per_bound,
        "reference_total_s": ref_total, "reference_failures": int((~ok).sum()),
        "jax_device": str(jax.devices()[0]),
    }
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classes", nargs="+", default=["knapsack", "production", "portfolio"])
    ap.add_argument("--knapsack", nargs=2, type=int, default=[5, 100], metavar=("M", "N"))
    ap.add_argument("--production", type=int, default=10, metavar="N")
    ap.add_argument("--portfolio", type=int, default=20, metavar="N")
    ap.add_argument("--train", type=int, default=4096)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", nargs="*", type=int, default=[128, 128])
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--backend", default="jax", choices=["jax"],
                    help="DLL trains with JAX (CPU or GPU, whichever jax sees)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--defaults", action="store_true",
                    help="DualProxy(prob).fit(train) with every training setting at its default "
                         "(--epochs, --lr, --hidden, ... ignored); generic classes lp, lp1, lp2 "
                         "(12 x 8 covering LP, 2000 draws, A from seed 0/1/2) and socp")
    ap.add_argument("--out", default="benchmarks/results/dual_proxies.json")
    args = ap.parse_args()

    import jax

    rows = []
    head = (f"{'class':<11} {'instance':<26} {'train s':>8} {'gap mean':>9} {'median':>9} "
            f"{'max':>9} {'invalid':>7} {'bound/inst':>11} {'clarabel':>10} {'ratio':>8} "
            f"{'cvxpy+cl':>10} {'ratio':>8}")
    print(head)
    print("-" * len(head))
    for name in args.classes:
        r = run_class(name, args)
        rows.append(r)
        print(f"{name:<11} {r['instance']:<26} {r['fit_s']:8.1f} {r['gap_mean']:9.2e} "
              f"{r['gap_median']:9.2e} {r['gap_max']:9.2e} {r['invalid']:>7d} "
              f"{r['bound_s_per_instance']:11.2e} {r['clarabel_solver_s']:10.2e} "
              f"{r['speedup_vs_solver']:8.0f} {r['clarabel_wall_s']:10.2e} "
              f"{r['speedup_vs_wall']:8.0f}", flush=True)
    print()
    print(f"gap = (OPT - bound) / |OPT| over {args.test} held-out parameters; invalid = bound > "
          "OPT + 1e-7 (1 + |OPT|); ratio = median Clarabel seconds per instance / batched bound "
          "seconds per instance (same run).")
    print(f"paper (abstract): mean gaps under {PAPER_MEAN_GAP:.1%}; 2x that = "
          f"{2 * PAPER_MEAN_GAP:.1%}.")
    env = {"platform": platform.platform(), "cpus": os.cpu_count(),
           "jax_devices": str(jax.devices()), "jax": jax.__version__}
    write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
