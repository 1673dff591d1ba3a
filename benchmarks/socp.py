"""Benchmark: random SOCP families, cvxkit's conic ADMM against SCS and Clarabel.

Each instance is a random feasible, bounded conic program in SCS's form
``min c'x s.t. Ax + s = b, s in K`` with K = nonnegative orthant x second-order cones of size
``--cone-size``, built from a known primal-dual solution (Moreau: for a random v, s* = P_K(v),
y* = P_K(-v), so s*'y* = 0; then b = A x* + s*, c = -A'y*). A is sparse (about 8 nonzeros
per column), m = 2n rows, a quarter of them in the orthant.

Success is judged on the returned (x, y) and the unscaled data, the same for every solver:
primal residual dist(b - Ax, K), dual residual ||c + A'y||, both in the infinity norm, relative
to 1 + ||b|| and 1 + ||c||; gap |c'x + b'y| / (1 + |c'x| + |b'y|); each <= eps. Counts per
accuracy and shifted geometric means of the times (shift 10 s, failures charged the limit).
Every solver gets eps_abs = eps_rel = eps and the same time limit, and one thread
(OPENBLAS/MKL/OMP_NUM_THREADS=1).

    python benchmarks/socp.py --sizes 100 1000 10000 --eps 1e-4 1e-6 --seeds 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time

for _k in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_k, "1")  # one core each (SCS's wheel factors with MKL's PARDISO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from common import write_results  # noqa: E402


def random_socp(n, seed, cone_size=5):
    """A feasible bounded SOCP with n variables, m = 2n rows; returns (c, A, b, cones)."""
    from cvxkit.solvers import cones as K
    from cvxkit.solvers.backend import get_backend

    rng = np.random.default_rng(seed)
    m = 2 * n
    lin = m // 4
    q = [cone_size] * ((m - lin) // cone_size)
    m = lin + sum(q)
    cones = {"l": lin, "q": q}
    A = sp.random(m, n, density=min(1.0, 8.0 / m), random_state=rng, format="csc",
                  data_rvs=rng.standard_normal) + sp.eye(m, n, format="csc")
    cs, bk = K.layout(cones, m), get_backend("numpy")
    v = rng.standard_normal(m)
    s, y = K.project(bk, cs, v), K.project(bk, cs, -v)
    x = rng.standard_normal(n)
    return -(A.T @ y), A.tocsc(), A @ x + s, cones


def judge(c, A, b, cones, x, y, eps):
    """Relative primal/dual residuals and gap on the unscaled data (module docstring)."""
    from cvxkit.solvers import cones as K
    from cvxkit.solvers.backend import get_backend

    if x is None or y is None or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return False
    cs, bk = K.layout(cones, A.shape[0]), get_backend("numpy")
    r = b - A @ x
    prim = np.abs(r - K.project(bk, cs, r)).max() / (1 + np.abs(b).max())
    dual = np.abs(c + A.T @ y).max() / (1 + np.abs(c).max())
    dual_cone = np.abs(y - K.project(bk, cs, y, dual=True)).max() / (1 + np.abs(y).max())
    cx, by = float(c @ x), float(b @ y)
    gap = abs(cx + by) / (1 + abs(cx) + abs(by))
    return max(prim, dual, dual_cone, gap) <= eps


def run_cvxkit(c, A, b, cones, eps, limit):
    from cvxkit.solvers import admm_conic

    r = admm_conic(None, c, A, b, cones, tol=eps, max_iter=10**6, time_limit=limit)
    return r.x, r.dual, r.status.value


def run_scs(c, A, b, cones, eps, limit):
    import scs

    solver = scs.SCS({"A": A, "b": b, "c": c}, {"l": cones["l"], "q": cones["q"]},
                     eps_abs=eps, eps_rel=eps, verbose=False, time_limit_secs=limit,
                     max_iters=10**7)
    sol = solver.solve()
    return sol["x"], sol["y"], sol["info"]["status"]


def run_clarabel(c, A, b, cones, eps, limit):
    import clarabel

    K = [clarabel.NonnegativeConeT(cones["l"])] + [clarabel.SecondOrderConeT(k) for k in cones["q"]]
    st = clarabel.DefaultSettings()
    st.verbose, st.time_limit = False, limit
    st.tol_gap_abs = st.tol_gap_rel = st.tol_feas = eps
    n = A.shape[1]
    sol = clarabel.DefaultSolver(sp.csc_matrix((n, n)), c, A, b, K, st).solve()
    return np.asarray(sol.x), np.asarray(sol.z), str(sol.status)


SOLVERS = {"cvxkit admm_conic": run_cvxkit, "SCS": run_scs, "Clarabel": run_clarabel}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--eps", type=float, nargs="+", default=[1e-4, 1e-6])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "socp.json"))
    args = ap.parse_args(argv)
    rows = []
    for n in args.sizes:
        for seed in range(args.seeds):
            c, A, b, cones = random_socp(n, seed)
            for eps in args.eps:
                for name, fn in SOLVERS.items():
                    t = time.perf_counter()
                    x, y, status = fn(c, A, b, cones, eps, args.time_limit)
                    t = time.perf_counter() - t
                    ok = judge(c, A, b, cones, x, y, eps) and t <= args.time_limit
                    rows.append(dict(solver=name, n=n, seed=seed, eps=eps, time=t, ok=bool(ok),
                                     status=status))
                    print(f"  n={n:6d} seed={seed} eps={eps:.0e} {name:<18} {t:8.3f}s "
                          f"{'solved' if ok else 'FAILED'} ({status})", flush=True)
    print(f"\nrandom SOCPs (m = 2n, SOC size 5), time limit {args.time_limit:g} s; shifted "
          f"geometric mean (10 s shift, failures charged the limit) relative to cvxkit")
    for n in args.sizes:
        for eps in args.eps:
            sgm = {}
            for name in SOLVERS:
                rs = [r for r in rows if r["solver"] == name and r["n"] == n and r["eps"] == eps]
                ts = [r["time"] if r["ok"] else args.time_limit for r in rs]
                sgm[name] = (float(np.exp(np.mean(np.log(np.array(ts) + 10.0))) - 10.0),
                             sum(r["ok"] for r in rs), len(rs))
            base = sgm["cvxkit admm_conic"][0]
            cells = "  ".join(f"{k}: {v[1]}/{v[2]} solved, sgm {v[0]:.3f}s "
                              f"({v[0] / base if base > 0 else float('nan'):.2f}x)"
                              for k, v in sgm.items())
            print(f"  n={n:6d} eps={eps:.0e}  {cells}")
    write_results(args.out, {"note": "2-core CPU shared with other jobs"}, args, rows)


if __name__ == "__main__":
    main()
