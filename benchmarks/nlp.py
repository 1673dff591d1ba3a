"""Benchmark: al_sketch (randomized Kaczmarz and exact-solve variants) against scipy's SLSQP and
trust-constr, on the Hock-Schittkowski set and on scalable sparse problems.

Hock-Schittkowski (``cvxkit.problems.hock_schittkowski``): every method starts from the standard
x0. "Solved" means |f - f*| / max(|f*|, 1) <= 1e-6 and ||c(x)|| <= 1e-6 and the method reports
success. al_sketch runs with tol = 1e-8 on the KKT residual; SLSQP with ftol = 1e-12; trust-constr
with gtol = 1e-10 and exact derivatives (the same JAX derivatives al_sketch uses).

Scalable problems (``cvxkit.problems.nlp``): ``random_sparse_nlp(n, m, nnz_per_row=10)`` (random
sparse Jacobian: its KKT matrix fills in under LU) and ``control_nlp(N)`` (banded KKT matrix).
All methods stop at KKT residual 1e-6 (trust-constr: gtol = 1e-6, with sparse Jacobian and
Hessian). Reported: wall time (best of --repeat), outer iterations, inner sketch steps and
flops (al_sketch rk), the LU fill nnz(L + U) (exact variant), final objective.

    python benchmarks/nlp.py --verify              # cross-check the HS data with SLSQP / trust-constr
    python benchmarks/nlp.py --hs                  # the HS table
    python benchmarks/nlp.py --scalable 10000:2000 20000:4000 --control 10000 --out results/nlp.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
from scipy.optimize import NonlinearConstraint, minimize

from cvxkit.problems.hock_schittkowski import HS_DATA, HS_NUMBERS, hs_numpy, hs_problem
from cvxkit.problems.nlp import control_nlp, random_sparse_nlp


def _gap(f, fstar):
    return abs(f - fstar) / max(abs(fstar), 1.0)


def scipy_solve(prob, method, tol):
    """SLSQP or trust-constr from prob.x0 with the problem's exact derivatives."""
    con_h = lambda x, v: prob.hessian(x, v) - prob.hessian(x, np.zeros(prob.m))  # noqa: E731
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "SLSQP":
            r = minimize(prob.objective, prob.x0, jac=prob.gradient, method="SLSQP",
                         constraints=[{"type": "eq", "fun": prob.constraints,
                                       "jac": lambda x: np.asarray(prob.jacobian(x))}],
                         options={"ftol": tol, "maxiter": 1000})
            ok = r.success
        else:
            con = NonlinearConstraint(prob.constraints, 0.0, 0.0, jac=prob.jacobian, hess=con_h)
            r = minimize(prob.objective, prob.x0, jac=prob.gradient,
                         hess=lambda x: prob.hessian(x, np.zeros(prob.m)), method="trust-constr",
                         constraints=[con], options={"gtol": tol, "xtol": 1e-14, "maxiter": 3000})
            ok = r.status in (1, 2)
    return r, ok, time.perf_counter() - t0


def verify():
    """Solve every HS problem from x0 with SLSQP and trust-constr (numpy callables, numerical
    derivatives) and print the gap to the stated f*."""
    for k in HS_NUMBERS:
        f, c, x0 = hs_numpy(k)
        row = [f"HS{k:<3} f*={HS_DATA[k].f_star:<14.10g}"]
        for meth in ("SLSQP", "trust-constr"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if meth == "SLSQP":
                    r = minimize(f, x0, method="SLSQP", constraints=[{"type": "eq", "fun": c}],
                                 options={"ftol": 1e-14, "maxiter": 1000})
                else:
                    r = minimize(f, x0, method="trust-constr",
                                 constraints=[NonlinearConstraint(c, 0, 0)],
                                 options={"gtol": 1e-12, "xtol": 1e-14, "maxiter": 5000})
            row.append(f"{meth}: gap {_gap(r.fun, HS_DATA[k].f_star):.1e} "
                       f"viol {np.abs(c(r.x)).max():.1e}")
        print("  ".join(row))


def hs_table(repeat):
    rows = []
    hdr = f"{'problem':8}" + "".join(f"{m:>30}" for m in ("al_sketch rk", "al_sketch exact",
                                                           "SLSQP", "trust-constr"))
    print(hdr + "\n" + " " * 8 + "   (solved, iterations, time s)" * 4)
    totals = {}
    for k in HS_NUMBERS:
        prob = hs_problem(k)
        prob.solve(tol=1e-8, max_iter=1)  # JAX compilation outside the timings
        fstar = HS_DATA[k].f_star
        row = {"problem": f"HS{k}"}
        cells = []
        for name in ("rk", "exact", "SLSQP", "trust-constr"):
            best = None
            for _ in range(repeat):
                if name in ("rk", "exact"):
                    t0 = time.perf_counter()
                    res = prob.solve(tol=1e-8, sketch=name, max_iter=500)
                    t = time.perf_counter() - t0
                    f, x, ok, it = res.objective, res.x, res.converged, res.iterations
                else:
                    r, ok, t = scipy_solve(prob, name, 1e-12 if name == "SLSQP" else 1e-10)
                    f, x, it = float(r.fun), r.x, int(r.nit)
                best = t if best is None else min(best, t)
            solved = bool(ok and _gap(f, fstar) <= 1e-6
                          and np.linalg.norm(prob.constraints(x)) <= 1e-6)
            row[name] = {"solved": solved, "iterations": it, "time": best, "objective": f}
            tot = totals.setdefault(name, [0, 0.0])
            tot[0] += solved
            tot[1] += best
            cells.append(f"{'yes' if solved else 'NO':>12}{it:>8}{best:>10.3f}")
        rows.append(row)
        print(f"{row['problem']:8}" + "".join(cells))
    print(f"{'solved':8}" + "".join(f"{f'{v[0]}/{len(HS_NUMBERS)}':>12}{'':>8}{v[1]:>10.3f}"
                                     for v in totals.values()) + "   (time: sum)")
    return rows


def scalable(prob, repeat, tc_limit):
    out = {"problem": prob.name, "n": prob.n, "m": prob.m}
    for name in ("rk", "exact"):
        best = None
        for _ in range(repeat):
            res = prob.solve(tol=1e-6, sketch=name, max_inner=10**9)
            t = res.solve_time + res.setup_time
            if best is None or t < best[0]:
                best = (t, res)
        t, res = best
        recs = res.info["records"]
        out[name] = {"time": t, "status": res.status.value, "iterations": res.iterations,
                     "objective": res.objective, "inner_steps": sum(res.info["inner_steps"]),
                     "inner_flops": res.info["inner_flops"], "inner_time": res.info["inner_time"],
                     "lu_fill": max((r.get("fill", 0) for r in recs), default=0)}
        print(f"  al_sketch {name:6} {res.status.value:9} {t:8.2f} s  it {res.iterations:3}  "
              f"inner steps {out[name]['inner_steps']:>11}  flops {res.info['inner_flops']:.2e}  "
              f"LU fill {out[name]['lu_fill']:>9}  f {res.objective:.10g}", flush=True)
    if prob.n <= tc_limit:
        r, ok, t = scipy_solve(prob, "trust-constr", 1e-6)
        out["trust-constr"] = {"time": t, "ok": bool(ok), "iterations": int(r.nit),
                               "objective": float(r.fun)}
        print(f"  trust-constr     {'ok' if ok else 'FAIL':9} {t:8.2f} s  it {r.nit:3}  "
              f"f {r.fun:.10g}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--hs", action="store_true")
    ap.add_argument("--scalable", nargs="*", default=[], help="n:m pairs of random_sparse_nlp")
    ap.add_argument("--control", nargs="*", type=int, default=[], help="N of control_nlp")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--trust-constr-max-n", type=int, default=10**9)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    if a.verify:
        verify()
    if a.hs:
        results["hs"] = hs_table(a.repeat)
    sc = []
    for spec in a.scalable:
        n, m = map(int, spec.split(":"))
        prob = random_sparse_nlp(n, m, nnz_per_row=10, seed=0)
        print(prob.name, flush=True)
        sc.append(scalable(prob, a.repeat, a.trust_constr_max_n))
    for N in a.control:
        prob = control_nlp(N)
        print(prob.name, flush=True)
        sc.append(scalable(prob, a.repeat, a.trust_constr_max_n))
    results["scalable"] = sc
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
