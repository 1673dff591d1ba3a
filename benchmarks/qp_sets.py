"""Benchmark: QP solvers on the Maros–Meszaros test set, judged as qpbenchmark judges them.

Runs cvxkit's ADMM (`admm_qp`, numpy; ``--jax`` adds the JAX back end on problems small enough
for its dense linear algebra), OSQP, SCS and Clarabel on every problem file of ``--data``
(default ``../shared/data/maros_meszaros``: 69 of the 138 problems, OSQP's form
min 1/2 x'Px + q'x + r s.t. l <= Ax <= u), each at qpbenchmark's accuracies "low" (1e-3) and
"mid" (1e-6), absolute, with a time limit per solve (``--time-limit``, default 60 s).

**Success** (`cvxkit.problems.maros_meszaros.judge`, qpbenchmark's definitions): from the returned
x and y on the unscaled data, primal residual ||Ax - proj_[l,u](Ax)||_inf, dual residual
||Px + q + A'y||_inf and duality gap |x'Px + q'x + sum u_i y_i+ + sum l_i y_i-| (a nonzero
multiplier on an infinite bound fails the gap) all <= the accuracy, and the solve finished
within the time limit without declaring the problem infeasible or unbounded. The solver's own
status is not consulted for success; it is for the two kinds of false answers counted:
**false optimal** (the solver said optimal / solved, the judge fails) and **false certificate**
(the solver said infeasible or unbounded: every Maros–Meszaros problem has a finite optimum).

**Tolerances passed** (each solver aims at the absolute accuracy eps, as qpbenchmark sets them):

| solver | settings |
|---|---|
| cvxkit admm | ``eps_abs=eps, eps_rel=0``, ``polish=True``, ``max_iter=10**9``, ``time_limit`` |
| OSQP | ``eps_abs=eps, eps_rel=0``, ``polishing=True``, ``max_iter=10**9``, ``time_limit`` |
| SCS | ``eps_abs=eps, eps_rel=0``, ``max_iters=10**9``, ``time_limit_secs`` |
| Clarabel | ``tol_feas=tol_gap_abs=eps, tol_gap_rel=0``, ``time_limit`` |

(iteration limits are lifted so that the time limit binds). SCS and Clarabel get the problem as
``A_c x + s = b, s in {0}^eq x R+^ineq`` (one row per equality, one per finite side of an
inequality); their duals map back to OSQP's ``y`` (upper side minus lower side).

**Isolation.** Each solve runs in a worker process (one at a time); a solve still running at
``1.5 * limit + 10`` s is killed and the worker restarted. Every solver also gets the limit as
its own time limit. Times are wall-clock seconds of the whole solver call (set-up,
factorization, solve; for JAX including compilation), with ``OPENBLAS_NUM_THREADS=1`` (and
OMP/MKL alike) in the workers, so every solver uses one core.

**Output**: per accuracy, successes per solver, the shifted geometric mean of the times (shift
10 s, a failure charged the time limit), false optimals and false certificates; then the
per-problem table (time in seconds for a success; otherwise a code: ``T`` time limit / killed,
``I`` inaccurate (judge failed without a claim of optimality), ``X`` false optimal, ``C``
false certificate, ``E`` error, ``-`` skipped). The JSON of every solve goes to ``--out``.

    python benchmarks/qp_sets.py --time-limit 10
    python benchmarks/qp_sets.py --problems QAFIRO CVXQP1_S --solvers cvxkit osqp --accuracy mid
"""
from __future__ import annotations

import argparse
import glob
import math
import multiprocessing as mp
import os
import platform
import sys
import time

SOLVERS = ("cvxkit", "osqp", "scs", "clarabel")
ACCURACY = {"low": 1e-3, "mid": 1e-6}
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "maros_meszaros"))
#: the JAX back end solves dense systems: problems with n + m above this are skipped
JAX_MAX_SIZE = 4000
BIG = 10 ** 9


# --- the solvers (run inside the worker) ----------------------------------------------------
def cone_form(P, q, A, l, u):
    """``(P_triu, q, A_c, b, n_eq, back)``: the QP as ``A_c x + s = b``, ``s`` in the zero cone
    (``n_eq`` equality rows) then the nonnegative orthant (finite upper sides, then finite lower
    sides negated); ``back(y_c)`` is OSQP's ``y`` (upper minus lower multiplier)."""
    import numpy as np
    import scipy.sparse as sp

    A = sp.csr_matrix(A)
    eq = np.isfinite(l) & (l == u)
    up = np.flatnonzero(np.isfinite(u) & ~eq)
    lo = np.flatnonzero(np.isfinite(l) & ~eq)
    eq = np.flatnonzero(eq)
    Ac = sp.vstack([A[eq], A[up], -A[lo]], format="csc")
    b = np.r_[l[eq], u[up], -l[lo]]

    def back(yc):
        y = np.zeros(A.shape[0])
        k1, k2 = eq.size, eq.size + up.size
        y[eq] = yc[:k1]
        y[up] += yc[k1:k2]
        y[lo] -= yc[k2:]
        return y

    return sp.triu(P, format="csc"), q, Ac, b, eq.size, back


def solve_cvxkit(d, eps, limit, backend="numpy"):
    from cvxkit.solvers.admm_qp import admm_qp

    if backend == "jax" and d["q"].size + d["l"].size > JAX_MAX_SIZE:
        return dict(status="skipped", x=None, y=None)
    r = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], backend=backend, eps_abs=eps,
                eps_rel=0.0, polish=True, max_iter=BIG, time_limit=limit)
    return dict(status=r.status.value, x=r.x, y=r.dual, iterations=int(r.iterations),
                claims_optimal=r.status.value == "optimal",
                certificate=r.status.value in ("primal_infeasible", "dual_infeasible"),
                compile_time=float(r.compile_time or 0.0))


def solve_osqp(d, eps, limit):
    import osqp
    import scipy.sparse as sp

    s = osqp.OSQP()
    s.setup(sp.triu(d["P"], format="csc"), d["q"], sp.csc_matrix(d["A"]), d["l"], d["u"],
            eps_abs=eps, eps_rel=0.0, max_iter=BIG, time_limit=limit, polishing=True,
            verbose=False)
    r = s.solve(raise_error=False)
    st = r.info.status
    return dict(status=st, x=r.x, y=r.y, iterations=int(r.info.iter),
                claims_optimal=st == "solved",
                certificate=st in ("primal infeasible", "dual infeasible"))


def solve_scs(d, eps, limit):
    import scs

    Pt, q, Ac, b, n_eq, back = cone_form(d["P"], d["q"], d["A"], d["l"], d["u"])
    cone = {"z": int(n_eq), "l": int(Ac.shape[0] - n_eq)}
    s = scs.SCS(dict(P=Pt, A=Ac, b=b, c=q), cone, eps_abs=eps, eps_rel=0.0, max_iters=BIG,
                time_limit_secs=float(limit), verbose=False)
    r = s.solve()
    st = r["info"]["status"]
    return dict(status=st, x=r["x"], y=back(r["y"]), iterations=int(r["info"]["iter"]),
                claims_optimal=st == "solved",
                certificate=st.startswith("infeasible") or st.startswith("unbounded"))


def solve_clarabel(d, eps, limit):
    import clarabel

    Pt, q, Ac, b, n_eq, back = cone_form(d["P"], d["q"], d["A"], d["l"], d["u"])
    cones = [c for c, k in ((clarabel.ZeroConeT(int(n_eq)), n_eq),
                            (clarabel.NonnegativeConeT(int(Ac.shape[0] - n_eq)),
                             Ac.shape[0] - n_eq)) if k]
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_feas = s.tol_gap_abs = eps
    s.tol_gap_rel = 0.0
    s.time_limit = float(limit)
    r = clarabel.DefaultSolver(Pt, q, Ac, b, cones, s).solve()
    st = str(r.status)
    return dict(status=st, x=r.x, y=back(r.z), iterations=int(r.iterations),
                claims_optimal=st == "Solved",
                certificate="Infeasible" in st and "Almost" not in st)


def _solve(task):
    """One solve and its judgement (in the worker)."""
    import numpy as np

    from cvxkit.problems.maros_meszaros import judge, read_npz

    solver, path, eps, limit = task
    d = read_npz(path)
    fn = {"cvxkit": solve_cvxkit, "osqp": solve_osqp, "scs": solve_scs,
          "clarabel": solve_clarabel,
          "cvxkit_jax": lambda d, e, t: solve_cvxkit(d, e, t, "jax")}[solver]
    if solver == "cvxkit":  # the compiled iterations, loaded untimed (once per worker): as in a
        from cvxkit.solvers import admm_kernels  # process that has run LOAD_AFTER iterations

        admm_kernels.load()
    t0 = time.perf_counter()
    try:
        out = fn(d, eps, limit)
    except Exception as e:  # a solver's own failure is a result, not a crash of the benchmark
        return dict(status="error", error=f"{type(e).__name__}: {e}"[:300], time=None)
    elapsed = time.perf_counter() - t0
    x, y = out.pop("x"), out.pop("y")
    if out["status"] == "skipped":
        return dict(out, time=None)
    x = None if x is None else np.asarray(x, dtype=np.float64)
    y = None if y is None else np.asarray(y, dtype=np.float64)
    j = judge(d["P"], d["q"], d["A"], d["l"], d["u"], x, y, eps)
    ok = j.ok and not out.get("certificate") and elapsed <= limit
    return dict(out, time=elapsed, primal=j.primal, dual=j.dual, gap=j.gap, judged_ok=j.ok,
                success=bool(ok), false_optimal=bool(out.get("claims_optimal") and not j.ok),
                false_certificate=bool(out.get("certificate")))


def _worker(conn):
    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(_solve(task))


class Worker:
    """A process that runs one solve at a time; killed and restarted when a solve hangs."""

    def __init__(self):
        self.ctx = mp.get_context("spawn")
        self.proc = None

    def _start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()

    def solve(self, task, hard_limit):
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send(task)
        if self.conn.poll(hard_limit):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        else:
            self.proc.kill()
            self.proc.join()
            self.proc = None
            return dict(status="killed", time=None, success=False, false_optimal=False,
                        false_certificate=False)
        self.proc = None
        return dict(status="crashed", time=None, success=False, false_optimal=False,
                    false_certificate=False)

    def close(self):
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(5)


# --- reporting ------------------------------------------------------------------------------
def shifted_geomean(times, limit, shift=10.0):
    """exp(mean(log(t + shift))) - shift, failures (None) charged ``limit``."""
    ts = [limit if t is None else t for t in times]
    return math.exp(sum(math.log(t + shift) for t in ts) / len(ts)) - shift if ts else float("nan")


def code(r):
    if r.get("status") == "skipped":
        return "-"
    if r.get("success"):
        return f"{r['time']:.3g}"
    if r.get("false_certificate"):
        return "C"
    if r.get("false_optimal"):
        return "X"
    if r.get("status") in ("killed", "time_limit", "run time limit reached", "MaxTime") or \
            (r.get("time") or 0) > r.get("limit", math.inf):
        return "T"
    if r.get("status") in ("error", "crashed", "numerical_error"):
        return "E"
    return "I"


def summarize(rows, solvers, accuracies, limit):
    problems = sorted({r["problem"] for r in rows})
    by = {(r["problem"], r["solver"], r["accuracy"]): r for r in rows}
    summary = {}
    for acc in accuracies:
        print(f"\n== accuracy {acc} ({ACCURACY[acc]:g} absolute), time limit {limit:g} s, "
              f"{len(problems)} problems ==")
        print(f"  {'solver':<12} {'solved':>8} {'rate':>7} {'shgeomean':>10} {'false opt':>10} "
              f"{'false cert':>11}")
        for s in solvers:
            rs = [by[p, s, acc] for p in problems if (p, s, acc) in by]
            rs = [r for r in rs if r.get("status") != "skipped"]
            ok = sum(bool(r.get("success")) for r in rs)
            sgm = shifted_geomean([r["time"] if r.get("success") else None for r in rs], limit)
            fo = [r["problem"] for r in rs if r.get("false_optimal")]
            fc = [r["problem"] for r in rs if r.get("false_certificate")]
            summary[f"{s}/{acc}"] = dict(solved=ok, problems=len(rs), shifted_geomean=sgm,
                                         false_optimal=fo, false_certificate=fc)
            rate = 100.0 * ok / max(len(rs), 1)
            print(f"  {s:<12} {ok:>4}/{len(rs):<3} {rate:>6.1f}% {sgm:>10.3f} {len(fo):>10} "
                  f"{len(fc):>11}" + (f"  false optimal: {' '.join(fo)}" if fo else "")
                  + (f"  false certificate: {' '.join(fc)}" if fc else ""))
    print("\nper problem (seconds for a success; T time limit, I inaccurate, X false optimal, "
          "C false certificate, E error, - skipped)")
    head = "  ".join(f"{s + '/' + a:>14}" for a in accuracies for s in solvers)
    print(f"  {'problem':<10} {'n':>6} {'m':>6}  {head}")
    for p in problems:
        r0 = next(r for r in rows if r["problem"] == p)
        cells = "  ".join(f"{code(by[p, s, a]) if (p, s, a) in by else '':>14}"
                          for a in accuracies for s in solvers)
        print(f"  {p:<10} {r0['n']:>6} {r0['m']:>6}  {cells}")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of the problem files")
    ap.add_argument("--solvers", nargs="*", default=list(SOLVERS), choices=SOLVERS)
    ap.add_argument("--jax", action="store_true", help="also cvxkit's JAX back end")
    ap.add_argument("--accuracy", nargs="*", default=list(ACCURACY), choices=list(ACCURACY))
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve")
    ap.add_argument("--problems", nargs="*", help="problem names (default: every file)")
    ap.add_argument("--max-size", type=int, default=None, help="skip problems with n + m above")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "qp_sets.json"))
    ap.add_argument("--report", metavar="JSON", help="print the tables of a results file and stop")
    args = ap.parse_args(argv)
    if args.report:
        import json

        with open(args.report) as f:
            saved = json.load(f)
        rows, a = saved["rows"], saved["args"]
        solvers = [s for s in a["solvers"] + (["cvxkit_jax"] if a.get("jax") else [])]
        summarize(rows, solvers, a["accuracy"], a["time_limit"])
        return 0
    if not os.path.isdir(args.data):
        print(f"no problem folder at {args.data}: nothing to run (give --data)")
        return 0
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"  # inherited by the spawned workers
    import numpy as np

    from common import write_results

    paths = sorted(glob.glob(os.path.join(args.data, "*.npz")))
    if args.problems:
        paths = [p for p in paths if os.path.basename(p)[:-4] in set(args.problems)]
    solvers = list(args.solvers) + (["cvxkit_jax"] if args.jax else [])
    rows, worker = [], Worker()
    try:
        for path in paths:
            name = os.path.basename(path)[:-4]
            with np.load(path) as f:
                n, m = int(f["q"].size), int(f["l"].size)
            if args.max_size is not None and n + m > args.max_size:
                continue
            for acc in args.accuracy:
                for s in solvers:
                    t = time.perf_counter()
                    r = worker.solve((s, path, ACCURACY[acc], args.time_limit),
                                     1.5 * args.time_limit + 10)
                    r.update(problem=name, n=n, m=m, solver=s, accuracy=acc,
                             limit=args.time_limit, wall=time.perf_counter() - t)
                    rows.append(r)
                    print(f"{name:<10} {acc:<4} {s:<10} {code(r):>8}  {r.get('status')}"
                          f"  p={r.get('primal', float('nan')):.1e} d={r.get('dual', float('nan')):.1e}"
                          f" g={r.get('gap', float('nan')):.1e}", flush=True)
    finally:
        worker.close()
    summary = summarize(rows, solvers, args.accuracy, args.time_limit)
    import osqp
    import scs

    env = dict(python=sys.version.split()[0], machine=platform.machine(), cpus=os.cpu_count(),
               osqp=getattr(osqp, "__version__", "?"), scs=getattr(scs, "__version__", "?"),
               summary=summary)
    write_results(args.out, env, args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
