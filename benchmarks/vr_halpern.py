"""Benchmark: variance-reduced Halpern against deterministic Halpern on a finite-sum matrix game.

Instance (seeded): ``FiniteSumMatrixGame(random_game(n, m, m, noise, seed))``, payoffs
A_i = B + noise * N_i (B, N_i standard normal / sqrt(m)), so that the average Lipschitz constant L
is close to L_F, the regime where the paper (Cai, Alacaoglu & Diakonikolas, ICLR 2024) predicts a
gain of up to sqrt(n) in component evaluations. ``--instance pb`` uses the paper's
policeman-and-burglar matrix (m x m) split into n noisy components with that exact average.

Methods, both started at the uniform strategies:

* ``halpern``: deterministic Halpern on the extragradient map, step 1/L_F (2n component
  evaluations per iteration);
* ``vr_halpern``: the paper's Algorithm 2 (inexact Halpern + VR-FoRB) with its default
  parameters (outer step sqrt(n)/L, inner step sqrt(p(1-p))/(1+eta L), M_k = 0.05 n ln(k+2)).
  ``--variants`` may add ``page`` (Algorithm 1, meant for cocoercive operators: expect it not to
  converge on a bilinear game).

Measure: the forward-backward residual ||z - P(z - F(z))|| (the same for every method, computed
at every check, not counted) against component evaluations counted by the solvers; for each
target in ``--targets`` the evaluations (and epochs = evaluations / n, and wall seconds) until the
residual first falls below it. A run stops at ``--max-epochs`` epochs. The ratio column is
(deterministic evaluations) / (VR evaluations): above 1 means VR-Halpern needed fewer.

    python benchmarks/vr_halpern.py                      # n in 25 100 400, m = 20, seeds 0 1 2
    python benchmarks/vr_halpern.py --n 100 1600 --m 50 --backend jax --out benchmarks/results/vr_halpern.json
    python benchmarks/vr_halpern.py --restart-factor 0.2 --targets 1e-4 1e-6 1e-8   # both restarted

Wall times include the residual checks and, on JAX, exclude compilation; the machine may be
shared (the script prints the load average).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
from common import write_results

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def first_reach(residual, evals, times, target):
    hit = np.nonzero(np.asarray(residual) <= target)[0]
    if hit.size == 0:
        return None, None
    return float(evals[hit[0]]), float(times[hit[0]])


def run_one(game, method, variant, backend, max_epochs, seed, min_target, restart_factor=0.0):
    n = game.n
    if method == "halpern":
        # deterministic Halpern costs 2n evaluations per iteration
        res = game.solve(method="halpern", backend=backend, tol=1e-14,
                         max_iter=int(max_epochs // 2) + 1, check_every=1,
                         restart_factor=restart_factor)
        h = res.history
        evals = np.asarray(h["calls"]) * 2 * n
        resid = np.asarray(h["residual"])  # the game's forward-backward residual
    else:
        res = game.solve(method="vr_halpern", backend=backend, variant=variant, tol=min_target,
                         max_evals=max_epochs * n, max_iter=10**8, seed=seed,
                         restart_factor=restart_factor)
        h = res.history
        evals, resid = np.asarray(h["evals"]), np.asarray(h["residual"])
    return evals, resid, np.asarray(h["time"]), res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[25, 100, 400], help="components")
    ap.add_argument("--m", type=int, nargs="+", default=[20], help="strategies per player")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--instance", choices=["random", "pb"], default="random")
    ap.add_argument("--targets", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    ap.add_argument("--max-epochs", type=float, default=30_000)
    ap.add_argument("--variants", nargs="+", default=["forb"], choices=["forb", "page"])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "jax"])
    ap.add_argument("--restart-factor", type=float, default=0.0,
                    help="anchor restarts for both methods (0: off, as in the paper)")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)

    from cvxkit.problems.finite_sum import (
        FiniteSumMatrixGame,
        noisy_components,
        policeman_burglar,
        random_game,
    )

    env = {"python": platform.python_version(), "cpus": os.cpu_count(),
           "load": os.getloadavg(), "backend": args.backend}
    print(f"cpus {env['cpus']}, load average {env['load']}, backend {args.backend}")
    rows = []
    tmin = min(args.targets)
    head = (f"{'n':>5} {'m':>4} {'seed':>4} {'L/L_F':>6} {'method':>12} {'target':>7} "
            f"{'evals':>11} {'epochs':>8} {'time s':>7} {'det/VR evals':>12}")
    print(head)
    print("-" * len(head))
    for m in args.m:
        for n in args.n:
            for seed in args.seeds:
                if args.instance == "random":
                    A = random_game(n, m, m, noise=args.noise, seed=seed)
                else:
                    A = noisy_components(policeman_burglar(m, seed=seed + 1), n, args.noise, seed)
                game = FiniteSumMatrixGame(A)
                ratio_L = game.lipschitz / game.lipschitz_full
                runs = {"halpern": run_one(game, "halpern", None, args.backend, args.max_epochs,
                                           seed, tmin, args.restart_factor)}
                for v in args.variants:
                    runs[f"vr_{v}"] = run_one(game, "vr_halpern", v, args.backend,
                                              args.max_epochs, seed, tmin, args.restart_factor)
                for target in args.targets:
                    det_e, _ = first_reach(runs["halpern"][1], runs["halpern"][0],
                                           runs["halpern"][2], target)
                    for name, (ev, rs, ts, res) in runs.items():
                        e, t = first_reach(rs, ev, ts, target)
                        ratio = (det_e / e) if (e and det_e) else None
                        row = {"n": n, "m": m, "seed": seed, "L_over_LF": ratio_L,
                               "method": name, "target": target, "evals": e,
                               "epochs": None if e is None else e / n, "time": t,
                               "ratio_det_over_vr": ratio if name != "halpern" else None,
                               "compile_time": res.compile_time}
                        rows.append(row)
                        es = "not reached" if e is None else f"{e:11.0f}"
                        ep = "" if e is None else f"{e / n:8.0f}"
                        ts_ = "" if t is None else f"{t:7.2f}"
                        rs_ = "" if (name == "halpern" or ratio is None) else f"{ratio:12.2f}"
                        print(f"{n:>5} {m:>4} {seed:>4} {ratio_L:>6.3f} {name:>12} "
                              f"{target:>7.0e} {es:>11} {ep:>8} {ts_:>7} {rs_:>12}")
    print("\nsummary: geometric mean over seeds of det/VR evaluations (> 1: VR needs fewer)")
    for m in args.m:
        for n in args.n:
            for target in args.targets:
                for v in args.variants:
                    rs = [r["ratio_det_over_vr"] for r in rows if r["n"] == n and r["m"] == m
                          and r["target"] == target and r["method"] == f"vr_{v}"]
                    ok = [r for r in rs if r]
                    g = float(np.exp(np.mean(np.log(ok)))) if ok else float("nan")
                    print(f"  n={n:<5} m={m:<4} target={target:.0e} vr_{v}: {g:6.2f} "
                          f"({len(ok)}/{len(rs)} seeds reached by both)")
    if args.out:
        write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
