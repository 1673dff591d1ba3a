"""Benchmark: cvxkit's restarted Halpern PDHG (numpy, JAX) against HiGHS (scipy), CVXPY+Clarabel
and MPAX's r2HPDHG, on the Netlib LPs and on large random sparse LPs.

**Netlib** (``--netlib``): every problem of ``../shared/data/netlib`` (46 feasible, 3 infeasible;
the script says so and skips this part when the folder is missing), each solver at each
``--eps`` (default 1e-4 and 1e-6) with a per-problem ``--time-limit`` (60 s). A feasible problem
counts as solved when the solver reports optimal (our solver and MPAX: relative primal residual,
dual residual and gap <= eps in cuPDLPx's sense, see docs/lp.md) within the time limit and, for
the first-order solvers, its objective is within ``--obj-check`` (1e-3) relative of the recorded
optimum (the count by status alone is printed too); an infeasible one when it reports
infeasibility. Table: solved count, shifted geometric mean of the
times (shift 10 s; a failure counts as the time limit), failures by name. HiGHS and Clarabel are
interior-point/simplex references run once (at their own default tolerances, which are tighter).
JAX times exclude compilation: ours is compiled by a 64-iteration solve; MPAX 0.2.4's
``optimize`` (which would re-trace and compile at every call, 10-15 s here) is wrapped once in
``jax.jit`` per tolerance and warmed up by a whole solve.

**Random sparse LPs** (``--random``, sizes ``--sizes``, default 5000 and 20000): m = n, 8 nonzeros
N(0, 1) per column at random rows, built from a primal-dual pair so that they are feasible and
bounded with a known optimum: x* >= 0 (half zero), y* <= 0 on the rows active at x* (half the
rows), b_ub = A x* + slack (slack > 0 exactly on the inactive rows), c = A^T y* + r (r >= 0 zero
where x* > 0). ``min c'x s.t. A x <= b_ub, x >= 0``.

    python benchmarks/lp.py --netlib --backends numpy jax --eps 1e-4 1e-6
    python benchmarks/lp.py --random --sizes 5000 20000 --eps 1e-4 --backends jax
    python benchmarks/lp.py --random --sizes 100000 --backends jax --solvers ours mpax   # on a GPU
    python benchmarks/lp.py --batch 1000 --batch-shape 20 50 --eps 1e-4

**Batches** (``--batch B``, shape ``--batch-shape M N``, default 20 x 50): B dense random LPs
``min c'x s.t. K x <= uc, x >= 0`` (each feasible and bounded: ``uc = K x0 + slack``, ``c = -K'w
+ s`` with ``w, s >= 0``), solved by ``halpern_pdhg_batch`` (one vmapped JAX call), by a Python
loop of single ``halpern_pdhg`` JAX solves, by MPAX's r2HPDHG under ``jax.vmap`` (if installed)
and by a loop of HiGHS calls. Compilation is excluded (each JAX code is run once on the same
shapes first). Table: members per second, members optimal, the largest relative objective
error against HiGHS, and the ratio of times against our batch.

The machine has 2 cores and other work may be running: times are noisy; repeat (``--repeat``).
"""
from __future__ import annotations

import argparse
import math
import os
import pathlib
import platform
import time

import numpy as np
import scipy.sparse as sp

from common import best_of, write_results

from cvxkit.problems import LinearProgram
from cvxkit.solvers.result import Status

NETLIB = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "netlib"
SHIFT = 10.0


# --- problems ----------------------------------------------------------------------------------
def random_sparse_lp(n, per_col=8, seed=0):
    """``(LinearProgram, optimal objective)``: see the module docstring."""
    rng = np.random.default_rng(seed)
    m = n
    rows = np.concatenate([rng.choice(m, per_col, replace=False) for _ in range(n)])
    cols = np.repeat(np.arange(n), per_col)
    A = sp.csr_matrix((rng.standard_normal(n * per_col), (rows, cols)), shape=(m, n))
    x = np.where(rng.random(n) < 0.5, rng.uniform(0.5, 2.0, n), 0.0)
    active = rng.random(m) < 0.5
    y = np.where(active, -rng.uniform(0.5, 2.0, m), 0.0)
    b = A @ x + np.where(active, 0.0, rng.uniform(0.5, 2.0, m))
    c = A.T @ y + np.where(x > 0, 0.0, rng.uniform(0.5, 2.0, n))
    return LinearProgram(c, A_ub=A, b_ub=b), float(c @ x)


def netlib_names(sub=""):
    d = NETLIB / sub
    return sorted(p.stem for p in d.glob("*.npz")) if d.is_dir() else []


# --- solvers -----------------------------------------------------------------------------------
def run_ours(lp, eps, backend, time_limit):
    res = lp.solve(backend=backend, tol=eps, max_iter=50_000_000, time_limit=time_limit)
    return res.status, res.objective, res.iterations, res.compile_time


def run_highs(lp, eps, time_limit, method="highs"):
    """scipy's HiGHS: ``method="highs"`` (HiGHS chooses, usually dual simplex) or ``"highs-ipm"``."""
    from scipy.optimize import linprog

    fin = np.isfinite(lp.b_ub)
    res = linprog(lp.c, A_ub=lp.A_ub[np.flatnonzero(fin)] if lp.m_ub else None,
                  b_ub=lp.b_ub[fin] if lp.m_ub else None, A_eq=lp.A_eq if lp.m_eq else None,
                  b_eq=lp.b_eq if lp.m_eq else None, bounds=np.column_stack([lp.lb, lp.ub]),
                  method=method, options={"time_limit": time_limit})
    status = {0: Status.OPTIMAL, 1: Status.TIME_LIMIT, 2: Status.PRIMAL_INFEASIBLE,
              3: Status.DUAL_INFEASIBLE}.get(res.status, Status.NUMERICAL_ERROR)
    return status, float(res.fun) if res.fun is not None else math.nan, int(res.nit), 0.0


def run_clarabel(lp, eps, time_limit):
    import cvxpy as cp

    prob, _ = lp.to_cvxpy()
    try:
        prob.solve(solver="CLARABEL", time_limit=time_limit)
    except cp.error.SolverError:
        return Status.NUMERICAL_ERROR, math.nan, 0, 0.0
    status = {"optimal": Status.OPTIMAL, "infeasible": Status.PRIMAL_INFEASIBLE,
              "unbounded": Status.DUAL_INFEASIBLE}.get(prob.status, Status.NUMERICAL_ERROR)
    return status, float(prob.value) if prob.value is not None else math.nan, \
        int(prob.solver_stats.num_iters or 0), 0.0


_MPAX_CACHE = {}


def mpax_problem(lp):
    """MPAX 0.2.4's ``create_lp``: min c'x s.t. A x = b, G x >= h, l <= x <= u (BCOO)."""
    import jax.numpy as jnp
    from jax.experimental import sparse as jsparse
    from mpax import create_lp

    fin = np.isfinite(lp.b_ub)
    G = -sp.csr_matrix(lp.A_ub)[np.flatnonzero(fin)]
    A = sp.csr_matrix(lp.A_eq)
    if A.shape[0] == 0:  # MPAX needs a (possibly empty) matrix with n columns
        A = sp.csr_matrix((0, lp.n))
    bcoo = lambda M: jsparse.BCOO.from_scipy_sparse(M.astype(np.float64))  # noqa: E731
    return create_lp(jnp.asarray(lp.c), bcoo(A), jnp.asarray(lp.b_eq), bcoo(G),
                     jnp.asarray(-lp.b_ub[fin]), jnp.asarray(lp.lb), jnp.asarray(lp.ub))


#: MPAX 0.2.4 has no time limit: its iteration limit (``--mpax-iters``)
MPAX_ITERS = [2**31 - 1]


def run_mpax(lp, eps, time_limit):
    import jax
    from mpax import r2HPDHG

    with jax.enable_x64(True):
        prob = mpax_problem(lp)
        key = (eps, MPAX_ITERS[0])
        if key not in _MPAX_CACHE:  # one jitted optimize per setting: compiled once per shape
            solver = r2HPDHG(eps_abs=eps, eps_rel=eps, verbose=False, iteration_limit=MPAX_ITERS[0])
            _MPAX_CACHE[key] = jax.jit(solver.optimize)
        out = _MPAX_CACHE[key](prob)
        jax.block_until_ready(out.primal_solution)
    name = out.termination_status.name if hasattr(out.termination_status, "name") else \
        str(int(out.termination_status))
    status = {"OPTIMAL": Status.OPTIMAL, "PRIMAL_INFEASIBLE": Status.PRIMAL_INFEASIBLE,
              "DUAL_INFEASIBLE": Status.DUAL_INFEASIBLE}.get(name, Status.MAX_ITER)
    if name not in ("OPTIMAL", "PRIMAL_INFEASIBLE", "DUAL_INFEASIBLE"):
        try:  # MPAX 0.2.4 returns an integer code
            from mpax.utils import TerminationStatus

            tname = TerminationStatus(int(out.termination_status)).name
            status = {"OPTIMAL": Status.OPTIMAL, "PRIMAL_INFEASIBLE": Status.PRIMAL_INFEASIBLE,
                      "DUAL_INFEASIBLE": Status.DUAL_INFEASIBLE}.get(tname, Status.MAX_ITER)
        except Exception:  # noqa: BLE001
            pass
    return status, float(out.primal_objective), int(out.iteration_count), 0.0


def timed(fn, repeat, warmup):
    """``((status, obj, iters, compile), seconds)``; ``warmup()`` (JAX: compiles) runs first."""
    if warmup is not None:
        warmup()
    return best_of(repeat, fn)


SOLVERS = ("ours", "highs", "highs_ipm", "clarabel", "mpax")


def _ours_warmup(lp, eps, backend, time_limit):
    """Compile our JAX loop for this shape (a 64-iteration solve); nothing on numpy."""
    if backend == "jax":
        lp.solve(backend="jax", tol=eps, max_iter=64)


def entries(args):
    """(label, function(lp, eps, time_limit), warm-up function or None, runs per eps?)."""
    out = []
    if "ours" in args.solvers:
        for b in args.backends:
            out.append((f"cvxkit {b}", lambda lp, e, t, b=b: run_ours(lp, e, b, t),
                        lambda lp, e, t, b=b: _ours_warmup(lp, e, b, t), True))
    if "mpax" in args.solvers:
        try:
            import mpax  # noqa: F401

            # MPAX compiles inside optimize: its warm-up is a whole solve
            out.append(("MPAX r2HPDHG", run_mpax, run_mpax, True))
        except ImportError:
            print("MPAX not installed: skipped")
    if "highs" in args.solvers:
        out.append(("HiGHS (scipy)", run_highs, None, False))
    if "highs_ipm" in args.solvers:
        out.append(("HiGHS IPM", lambda lp, e, t: run_highs(lp, e, t, "highs-ipm"), None, False))
    if "clarabel" in args.solvers:
        out.append(("CVXPY+Clarabel", run_clarabel, None, False))
    return out


def sgm(times, shift=SHIFT):
    t = np.asarray(times, dtype=float)
    return float(np.exp(np.mean(np.log(t + shift))) - shift) if t.size else math.nan


# --- Netlib ------------------------------------------------------------------------------------
def bench_netlib(args, rows):
    names = [(n, "") for n in netlib_names()] + [(n, "infeasible") for n in netlib_names("infeasible")]
    if not names:
        print(f"no Netlib data at {NETLIB}: skipped")
        return
    if args.problems:
        names = [(n, s) for n, s in names if n in args.problems]
    lps = {n: LinearProgram.from_npz(NETLIB / s / f"{n}.npz") for n, s in names}
    for label, fn, warm, per_eps in entries(args):
        for eps in (args.eps if per_eps else [None]):
            solved, by_status, times, fails = 0, 0, [], []
            for n, sub in names:
                lp = lps[n]
                try:
                    (st, obj, it, _), t = timed(
                        lambda: fn(lp, eps or 1e-8, args.time_limit), args.repeat,
                        None if warm is None else lambda: warm(lp, eps or 1e-8, args.time_limit))
                except Exception as e:  # noqa: BLE001 - a solver crash is a failure
                    st, obj, it, t = Status.NUMERICAL_ERROR, math.nan, 0, args.time_limit
                    print(f"  {label} {n}: {type(e).__name__}: {e}")
                in_time = t <= args.time_limit * 1.05
                if sub:
                    ok = reported = st is Status.PRIMAL_INFEASIBLE
                else:
                    known = lp.known_objective
                    reported = st is Status.OPTIMAL
                    ok = reported and (not per_eps or abs(obj - known) <= args.obj_check * (1 + abs(known)))
                ok, reported = ok and in_time, reported and in_time
                by_status += reported
                solved += ok
                times.append(t if ok else args.time_limit)
                if not ok:
                    fails.append(n)
                rows.append({"part": "netlib", "solver": label, "eps": eps, "problem": n,
                             "status": str(st), "objective": obj, "iterations": it, "time": t,
                             "ok": bool(ok)})
                if args.verbose:
                    print(f"  {label:16} eps={eps} {n:10} {st!s:18} {obj:.8g} it={it} {t:.2f}s {'ok' if ok else 'FAIL'}")
            print(f"{label:16} eps={eps!s:6}: solved {solved}/{len(names)} ({by_status} by the "
                  f"solver's own status, before the objective check), shifted geo. mean "
                  f"{sgm(times):.3f} s, failures: {', '.join(fails) or '-'}")


# --- random sparse LPs --------------------------------------------------------------------------
def bench_random(args, rows):
    for n in args.sizes:
        lp, opt = random_sparse_lp(n, seed=args.seed)
        print(f"random sparse LP m = n = {n}, nnz = {lp.A_ub.nnz}, optimum {opt:.8g}")
        base = None
        for label, fn, warm, per_eps in entries(args):
            for eps in (args.eps if per_eps else [None]):
                try:
                    (st, obj, it, comp), t = timed(
                        lambda: fn(lp, eps or 1e-8, args.time_limit), args.repeat,
                        None if warm is None else lambda: warm(lp, eps or 1e-8, args.time_limit))
                except Exception as e:  # noqa: BLE001
                    print(f"  {label}: {type(e).__name__}: {e}")
                    continue
                err = abs(obj - opt) / (1 + abs(opt))
                if label.startswith("cvxkit") and (base is None or label == "cvxkit jax"):
                    base = t  # ratios against our JAX path when it runs, else numpy
                ratio = f"{t / base:.2f}x ours" if base else ""
                print(f"  {label:16} eps={eps!s:6} {st!s:12} rel.obj.err {err:.1e} it={it:7d} "
                      f"{t:8.2f} s {ratio}")
                rows.append({"part": "random", "n": n, "solver": label, "eps": eps, "status": str(st),
                             "objective": obj, "optimum": opt, "iterations": it, "time": t})


# --- batches of small LPs ------------------------------------------------------------------------
def random_lp_batch(B, m, n, seed=0):
    """``(c (B, n), K (B, m, n), uc (B, m))``: see the module docstring."""
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((B, m, n))
    uc = np.einsum("bmn,bn->bm", K, rng.uniform(0.0, 1.0, (B, n))) + rng.uniform(0.1, 1.0, (B, m))
    c = -np.einsum("bmn,bm->bn", K, rng.uniform(0.0, 1.0, (B, m))) + rng.uniform(0.0, 1.0, (B, n))
    return c, K, uc


def _batch_entries(args, c, K, uc, eps):
    """(label, solve() -> (statuses, objectives), warm-up or None) for the batch comparison."""
    from cvxkit.solvers.halpern_pdhg import halpern_pdhg
    from cvxkit.solvers.lp_batch import halpern_pdhg_batch

    B = c.shape[0]

    def ours(max_iter=100_000):
        res = halpern_pdhg_batch(c, K, None, uc, 0.0, None, tol=eps, max_iter=max_iter)
        return list(res.status), res.objective

    def loop(max_iter=100_000):
        out = [halpern_pdhg(c[i], K[i], None, uc[i], 0.0, None, backend="jax", tol=eps,
                            max_iter=max_iter) for i in range(B)]
        return [r.status for r in out], np.array([r.objective for r in out])

    def highs():
        from scipy.optimize import linprog

        out = [linprog(c[i], A_ub=K[i], b_ub=uc[i], bounds=(0, None), method="highs")
               for i in range(B)]
        return [Status.OPTIMAL if r.status == 0 else Status.NUMERICAL_ERROR for r in out], \
            np.array([r.fun if r.status == 0 else math.nan for r in out])

    out = []
    if "ours" in args.solvers:
        out += [("cvxkit batch (vmap)", ours, lambda: ours(64)),
                ("cvxkit loop of JAX solves", loop, lambda: loop(64))]
    if "mpax" in args.solvers:
        try:
            out.append(("MPAX r2HPDHG (vmap)", *_mpax_batch(c, K, uc, eps)))
        except ImportError:
            print("MPAX not installed: skipped")
    if "highs" in args.solvers:
        out.append(("HiGHS loop (scipy)", highs, None))
    return out


def _mpax_batch(c, K, uc, eps):
    """MPAX's r2HPDHG vmapped over the members (dense matrices), jitted once."""
    import jax
    import jax.numpy as jnp
    from mpax import create_lp, r2HPDHG

    n = c.shape[1]
    solver = r2HPDHG(eps_abs=eps, eps_rel=eps, verbose=False, iteration_limit=MPAX_ITERS[0])

    def one(ci, Ki, ui):  # G x >= h: -K x >= -uc
        lp = create_lp(ci, jnp.zeros((0, n)), jnp.zeros(0), -Ki, -ui, jnp.zeros(n),
                       jnp.full(n, jnp.inf), use_sparse_matrix=False)
        r = solver.optimize(lp)
        return r.primal_objective, r.termination_status

    with jax.enable_x64(True):
        fn = jax.jit(jax.vmap(one))
        args = [jnp.asarray(v) for v in (c, K, uc)]

    def solve():
        with jax.enable_x64(True):
            obj, st = jax.device_get(fn(*args))
        try:
            from mpax.utils import TerminationStatus

            names = [TerminationStatus(int(s)).name for s in st]
        except Exception:  # noqa: BLE001
            names = [getattr(s, "name", str(s)) for s in st]
        return [Status.OPTIMAL if nm == "OPTIMAL" else Status.MAX_ITER for nm in names], obj

    return solve, solve


def bench_batch(args, rows):
    from scipy.optimize import linprog

    B, (m, n) = args.batch, args.batch_shape
    c, K, uc = random_lp_batch(B, m, n, seed=args.seed)
    ref = np.array([linprog(c[i], A_ub=K[i], b_ub=uc[i], bounds=(0, None), method="highs").fun
                    for i in range(B)])
    print(f"batch of {B} dense LPs, m = {m}, n = {n}")
    for eps in args.eps:
        base = None
        for label, fn, warm in _batch_entries(args, c, K, uc, eps):
            try:
                (st, obj), t = timed(fn, args.repeat, warm)
            except Exception as e:  # noqa: BLE001
                print(f"  {label}: {type(e).__name__}: {e}")
                continue
            base = base or t
            err = float(np.nanmax(np.abs(np.asarray(obj) - ref) / (1 + np.abs(ref))))
            n_opt = sum(s is Status.OPTIMAL for s in st)
            print(f"  {label:26} eps={eps:<7g} optimal {n_opt:5d}/{B}  rel.obj.err {err:.1e} "
                  f"{t:8.3f} s {B / t:10.1f} members/s {t / base:6.2f}x ours")
            rows.append({"part": "batch", "B": B, "m": m, "n": n, "solver": label, "eps": eps,
                         "optimal": n_opt, "max_rel_obj_err": err, "time": t,
                         "members_per_s": B / t})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netlib", action="store_true")
    ap.add_argument("--random", action="store_true")
    ap.add_argument("--problems", nargs="*", help="Netlib names (default: all)")
    ap.add_argument("--sizes", nargs="*", type=int, default=[5000, 20000])
    ap.add_argument("--batch", type=int, default=0,
                    help="B: time a batch of B small LPs (halpern_pdhg_batch vs loops, MPAX vmap)")
    ap.add_argument("--batch-shape", nargs=2, type=int, default=[20, 50], metavar=("M", "N"))
    ap.add_argument("--eps", nargs="*", type=float, default=[1e-4, 1e-6])
    ap.add_argument("--backends", nargs="*", default=["numpy", "jax"], choices=["numpy", "jax"])
    ap.add_argument("--solvers", nargs="*", default=list(SOLVERS), choices=SOLVERS)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--obj-check", type=float, default=1e-3)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mpax-iters", type=int, default=2**31 - 1,
                    help="MPAX's iteration limit (it has no time limit)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/lp.json")
    args = ap.parse_args()
    MPAX_ITERS[0] = args.mpax_iters
    if not (args.netlib or args.random or args.batch):
        args.netlib = args.random = True
    import jax

    env = {"platform": platform.platform(), "cpus": os.cpu_count(), "jax_devices": str(jax.devices()),
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(env)
    rows = []
    if args.batch:
        bench_batch(args, rows)
    if args.random:
        bench_random(args, rows)
    if args.netlib:
        bench_netlib(args, rows)
    write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
