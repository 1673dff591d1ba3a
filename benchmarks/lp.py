"""Benchmark: cvxkit's restarted Halpern PDHG (numpy, JAX) against HiGHS (scipy), CVXPY+Clarabel
and MPAX's r2HPDHG, on the Netlib LPs and on large random sparse LPs.

**Netlib** (``--netlib``) and **lp_more** (``--lp-more``): every problem of
``../shared/data/netlib`` (46 feasible with a known optimum, 3 infeasible; ``.npz``) at each
``--eps`` (default 1e-4 and 1e-6), and of ``../shared/data/lp_more`` (Kennington and Mészáros
LPs, MPS read by ``LinearProgram.from_mps``; HiGHS's value per problem from its ``index.csv``) at
each ``--lp-more-eps`` (default 1e-4); the script says so and skips a part whose folder is
missing. Every solver gets the per-problem ``--time-limit`` (default 60 s). Counts per solver and
tolerance: **solved** (status optimal in time and the objective within ``--obj-check``, 1e-4,
relative ``|f - f*| / (1 + |f*|)`` of the known optimum), **optimal** (the status alone), **false
optimal** (status optimal but the objective off by more than 10 tol; 10 ``--obj-check`` for the
references), **infeasible reported** (an infeasible problem ended ``primal_infeasible``), and the
shifted geometric mean of the times (shift 10 s; a failure counts as the time limit). Ours runs
with each ``--presolve`` setting (``auto``, ``on``, ``off``: one column each). HiGHS and
Clarabel are interior-point/simplex references run once at their own (tighter) default
tolerances; a solver that is not installed is skipped. MPAX 0.2.4 has no time limit: on the
sweeps each problem runs in a child process, compiled ahead of time (``jit(...).lower().compile()``,
not timed), then stopped at the time limit; its time is its own solve's. JAX times exclude
compilation: ours is compiled by a 64-iteration solve.

**Random sparse LPs** (``--random``, sizes ``--sizes``, default 5000 and 20000): m = n, 8 nonzeros
N(0, 1) per column at random rows, built from a primal-dual pair so that they are feasible and
bounded with a known optimum: x* >= 0 (half zero), y* <= 0 on the rows active at x* (half the
rows), b_ub = A x* + slack (slack > 0 exactly on the inactive rows), c = A^T y* + r (r >= 0 zero
where x* > 0). ``min c'x s.t. A x <= b_ub, x >= 0``.

    python benchmarks/lp.py --netlib --backends numpy --eps 1e-4 1e-6 --time-limit 60
    python benchmarks/lp.py --lp-more --backends numpy --time-limit 60 --presolve auto off
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

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
NETLIB, LP_MORE = DATA / "netlib", DATA / "lp_more"
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
# Each runner is fn(lp, eps, time_limit, item=None) -> (status, objective, iterations, own):
# ``own`` is the solver's own solve time when the call's wall time includes more (MPAX: a child
# process and its compilation), else None
def run_ours(lp, eps, backend, time_limit, presolve="auto"):
    res = lp.solve(backend=backend, tol=eps, max_iter=50_000_000, time_limit=time_limit,
                   presolve=presolve)
    return res.status, res.objective, res.iterations, None


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
    return status, float(res.fun) if res.fun is not None else math.nan, int(res.nit), None


def run_clarabel(lp, eps, time_limit):
    import cvxpy as cp

    prob, _ = lp.to_cvxpy()
    try:
        prob.solve(solver="CLARABEL", time_limit=time_limit)
    except cp.error.SolverError:
        return Status.NUMERICAL_ERROR, math.nan, 0, None
    status = {"optimal": Status.OPTIMAL, "infeasible": Status.PRIMAL_INFEASIBLE,
              "unbounded": Status.DUAL_INFEASIBLE}.get(prob.status, Status.NUMERICAL_ERROR)
    return status, float(prob.value) if prob.value is not None else math.nan, \
        int(prob.solver_stats.num_iters or 0), None


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


#: MPAX 0.2.4 has no time limit: its iteration limit (``--mpax-iters``); on the sweeps each
#: problem runs in a child process that is stopped at the time limit (compilation excluded)
MPAX_ITERS = [2**31 - 1]
_MPAX_NAMES = {"OPTIMAL": Status.OPTIMAL, "PRIMAL_INFEASIBLE": Status.PRIMAL_INFEASIBLE,
               "DUAL_INFEASIBLE": Status.DUAL_INFEASIBLE}


def _mpax_status(code):
    name = getattr(code, "name", None)
    if name is None:
        try:  # MPAX 0.2.4 returns an integer code
            from mpax.utils import TerminationStatus

            name = TerminationStatus(int(code)).name
        except Exception:  # noqa: BLE001
            name = str(code)
    return _MPAX_NAMES.get(name, Status.MAX_ITER)


def _mpax_compiled(lp, eps):
    """MPAX's r2HPDHG for ``lp`` at ``eps``, compiled ahead of time (``jit(...).lower().compile()``),
    and its argument."""
    import jax
    from mpax import r2HPDHG

    prob = mpax_problem(lp)
    solver = r2HPDHG(eps_abs=eps, eps_rel=eps, verbose=False, iteration_limit=MPAX_ITERS[0])
    return jax.jit(solver.optimize).lower(prob).compile(), prob


def run_mpax(lp, eps, time_limit):
    """In this process (the random and batch parts): compile, then time the solve."""
    import jax

    with jax.enable_x64(True):
        fn, prob = _mpax_compiled(lp, eps)
        t = time.perf_counter()
        out = fn(prob)
        jax.block_until_ready(out.primal_solution)
        elapsed = time.perf_counter() - t
    return _mpax_status(out.termination_status), float(out.primal_objective), \
        int(out.iteration_count), elapsed


def _mpax_child(conn, path, eps, iters):
    import jax

    jax.config.update("jax_enable_x64", True)
    MPAX_ITERS[0] = iters
    lp = load_item({"path": path, "known": math.nan})
    fn, prob = _mpax_compiled(lp, eps)
    conn.send("compiled")
    t = time.perf_counter()
    out = fn(prob)
    jax.block_until_ready(out.primal_solution)
    elapsed = time.perf_counter() - t
    conn.send((_mpax_status(out.termination_status).value, float(out.primal_objective),
               int(out.iteration_count), elapsed))


def run_mpax_limited(lp, eps, time_limit, item):
    """MPAX on a sweep item in a child process: compiled first (not timed), then stopped at the
    time limit (status ``time_limit``). Returns the child's own solve time."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    p = ctx.Process(target=_mpax_child, args=(there, str(item["path"]), eps, MPAX_ITERS[0]))
    p.start()
    try:
        if not here.poll(900) or here.recv() != "compiled":
            return Status.NUMERICAL_ERROR, math.nan, 0, 0.0
        t = time.perf_counter()
        if not here.poll(time_limit * 1.05 + 1.0):
            return Status.TIME_LIMIT, math.nan, 0, time.perf_counter() - t
        st, obj, iters, elapsed = here.recv()
        return Status(st), obj, iters, elapsed
    except EOFError:  # the child died
        return Status.NUMERICAL_ERROR, math.nan, 0, 0.0
    finally:
        if p.is_alive():
            p.kill()
        p.join()


def timed(fn, repeat, warmup):
    """``((status, obj, iters), seconds)``: the solver's own time where it reports one, else the
    best wall time of ``repeat`` calls; ``warmup()`` (JAX: compiles) runs first."""
    if warmup is not None:
        warmup()
    (st, obj, iters, own), t = best_of(repeat, fn)
    return (st, obj, iters), (t if own is None else own)


SOLVERS = ("ours", "highs", "highs_ipm", "clarabel", "mpax")


def _ours_warmup(lp, eps, backend, time_limit):
    """Compile our JAX loop for this shape (a 64-iteration solve); nothing on numpy."""
    if backend == "jax":
        lp.solve(backend="jax", tol=eps, max_iter=64)


def _mpax_entry(lp, eps, time_limit, item=None):
    """MPAX's time: its solve alone (compiled ahead of time), not the wall time of the call."""
    if item is None:
        return run_mpax(lp, eps, time_limit)
    return run_mpax_limited(lp, eps, time_limit, item)


def entries(args):
    """(label, function(lp, eps, time_limit, item=None), warm-up function or None, per eps?)."""
    out = []
    if "ours" in args.solvers:
        for b in args.backends:
            for pre in args.presolve:
                tag = "" if len(args.presolve) == 1 and pre == "auto" else f" presolve={pre}"
                flag = {"on": True, "off": False}.get(pre, "auto")
                out.append((f"cvxkit {b}{tag}",
                            lambda lp, e, t, item=None, b=b, f=flag: run_ours(lp, e, b, t, f),
                            lambda lp, e, t, b=b: _ours_warmup(lp, e, b, t), True))
    if "mpax" in args.solvers:
        try:
            import mpax  # noqa: F401

            out.append(("MPAX r2HPDHG", _mpax_entry, None, True))
        except ImportError:
            print("MPAX not installed: skipped")
    if "highs" in args.solvers:
        out.append(("HiGHS (scipy)", lambda lp, e, t, item=None: run_highs(lp, e, t), None, False))
    if "highs_ipm" in args.solvers:
        out.append(("HiGHS IPM", lambda lp, e, t, item=None: run_highs(lp, e, t, "highs-ipm"),
                    None, False))
    if "clarabel" in args.solvers:
        try:
            import clarabel  # noqa: F401

            out.append(("CVXPY+Clarabel", lambda lp, e, t, item=None: run_clarabel(lp, e, t),
                        None, False))
        except ImportError:
            print("Clarabel not installed: skipped")
    return out


def sgm(times, shift=SHIFT):
    t = np.asarray(times, dtype=float)
    return float(np.exp(np.mean(np.log(t + shift))) - shift) if t.size else math.nan


# --- Netlib and lp_more sweeps ----------------------------------------------------------------
def netlib_items():
    """Netlib's problems as sweep items: 46 feasible (known optimum) and 3 infeasible."""
    out = [dict(name=n, path=NETLIB / f"{n}.npz", known=None, infeasible=False)
           for n in netlib_names()]
    return out + [dict(name=n, path=NETLIB / "infeasible" / f"{n}.npz", known=math.nan,
                       infeasible=True) for n in netlib_names("infeasible")]


def lp_more_items():
    """``lp_more/index.csv``'s problems (HiGHS's status and value) as sweep items; a problem
    HiGHS did not finish keeps its value unknown (not counted as feasible or infeasible)."""
    import csv

    index = LP_MORE / "index.csv"
    if not index.is_file():
        return []
    out = []
    with open(index) as f:
        for row in csv.DictReader(f):
            st = row["highs_status"].strip().lower()
            known = float(row["objective"]) if st == "optimal" else math.nan
            out.append(dict(name=row["name"], path=LP_MORE / f"{row['name']}.mps.gz", known=known,
                            infeasible="infeasible" in st, unknown=st not in ("optimal",)
                            and "infeasible" not in st))
    return out


def load_item(item):
    lp = LinearProgram.from_npz(item["path"]) if str(item["path"]).endswith(".npz") \
        else LinearProgram.from_mps(item["path"])
    if item.get("known") is None:
        item["known"] = lp.known_objective
    return lp


def rel_error(obj, known):
    return abs(obj - known) / (1.0 + abs(known)) if np.isfinite(obj) else math.inf


def judge(item, st, obj, t, eps, args):
    """The verdicts of one run: ``optimal`` (status), ``solved`` (feasible: optimal and the
    objective within ``--obj-check`` of the known value; infeasible: reported infeasible),
    ``false_optimal`` (optimal and off by more than 10 eps, or 10 ``--obj-check`` for the
    references), in time."""
    in_time = t <= args.time_limit * 1.05
    out = {"optimal": st is Status.OPTIMAL and in_time, "false_optimal": False, "solved": False,
           "rel_error": math.nan}
    if item["infeasible"]:
        out["solved"] = st is Status.PRIMAL_INFEASIBLE and in_time
        out["false_optimal"] = st is Status.OPTIMAL
    elif not item.get("unknown"):
        err = rel_error(obj, item["known"])
        out["rel_error"] = err
        out["solved"] = out["optimal"] and err <= args.obj_check
        out["false_optimal"] = st is Status.OPTIMAL and err > 10 * (eps or args.obj_check)
    return out


def bench_set(part, items, args, rows):
    """Every solver (and every eps for ours and MPAX) on every item; one summary line each."""
    if args.problems:
        items = [it for it in items if it["name"] in args.problems]
    lps = {}
    for it in items:
        try:
            lps[it["name"]] = load_item(it)
        except Exception as e:  # noqa: BLE001 - a file the reader refuses is reported
            print(f"  {part} {it['name']}: cannot read: {type(e).__name__}: {e}")
    items = [it for it in items if it["name"] in lps]
    feas = [it for it in items if not it["infeasible"] and not it.get("unknown")]
    infeas = [it for it in items if it["infeasible"]]
    print(f"{part}: {len(feas)} feasible with a known optimum, {len(infeas)} infeasible, "
          f"{len(items) - len(feas) - len(infeas)} without a known status; "
          f"time limit {args.time_limit:g} s per problem")
    summary = []
    for label, fn, warm, per_eps in entries(args):
        for eps in (args.eps if per_eps else [None]):
            count = {"optimal": 0, "solved": 0, "false_optimal": 0, "infeasible": 0}
            times, fails, falses = [], [], []
            for it in items:
                lp = lps[it["name"]]
                try:
                    (st, obj, iters), t = timed(
                        lambda: fn(lp, eps or 1e-8, args.time_limit, it), args.repeat,
                        None if warm is None else lambda: warm(lp, eps or 1e-8, args.time_limit))
                except Exception as e:  # noqa: BLE001 - a solver crash is a failure
                    st, obj, iters, t = Status.NUMERICAL_ERROR, math.nan, 0, args.time_limit
                    print(f"  {label} {it['name']}: {type(e).__name__}: {e}")
                v = judge(it, st, obj, t, eps, args)
                if it.get("unknown"):
                    continue
                count["optimal"] += v["optimal"] and not it["infeasible"]
                count["solved"] += v["solved"] and not it["infeasible"]
                count["infeasible"] += v["solved"] and it["infeasible"]
                count["false_optimal"] += v["false_optimal"]
                times.append(t if v["solved"] else args.time_limit)
                if not v["solved"]:
                    fails.append(it["name"])
                if v["false_optimal"]:
                    falses.append(f"{it['name']} ({v['rel_error']:.1e})")
                rows.append({"part": part, "solver": label, "eps": eps, "problem": it["name"],
                             "status": str(st), "objective": obj, "known": it["known"],
                             "rel_error": v["rel_error"], "iterations": iters, "time": t,
                             "solved": bool(v["solved"]), "false_optimal": bool(v["false_optimal"])})
                if args.verbose:
                    print(f"  {label:22} eps={eps} {it['name']:24} {st!s:18} {obj:.10g} "
                          f"err={v['rel_error']:.1e} it={iters} {t:.2f}s "
                          f"{'ok' if v['solved'] else 'FAIL'}", flush=True)
            line = dict(solver=label, eps=eps, solved=count["solved"], optimal=count["optimal"],
                        feasible=len(feas), false_optimal=count["false_optimal"],
                        infeasible=count["infeasible"], n_infeasible=len(infeas), sgm=sgm(times))
            summary.append(line)
            print(f"{label:22} eps={eps!s:6}: solved {line['solved']}/{len(feas)} (optimal by "
                  f"status {line['optimal']}), false optimal {line['false_optimal']}"
                  f"{' ' + ', '.join(falses) if falses else ''}, infeasible reported "
                  f"{line['infeasible']}/{len(infeas)}, shifted geo. mean {line['sgm']:.2f} s; "
                  f"not solved: {', '.join(fails) or '-'}", flush=True)
    print(f"\n{part} (time limit {args.time_limit:g} s; solved = optimal with the objective within "
          f"{args.obj_check:g} relative of the known optimum)\n")
    print("| solver | tol | solved | optimal (status) | false optimal | infeasible reported | "
          "shifted geo. mean (s) |\n|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['solver']} | {r['eps'] or 'default'} | {r['solved']}/{r['feasible']} | "
              f"{r['optimal']} | {r['false_optimal']} | {r['infeasible']}/{r['n_infeasible']} | "
              f"{r['sgm']:.2f} |")


def bench_netlib(args, rows):
    if not NETLIB.is_dir():
        print(f"no Netlib data at {NETLIB} (../shared/data is absent): skipped")
        return
    bench_set("netlib", netlib_items(), args, rows)


def bench_lp_more(args, rows):
    items = lp_more_items()
    if not items:
        print(f"no lp_more data at {LP_MORE} (../shared/data is absent): skipped")
        return
    saved = args.eps
    args.eps = args.lp_more_eps
    try:
        bench_set("lp_more", items, args, rows)
    finally:
        args.eps = saved


# --- random sparse LPs --------------------------------------------------------------------------
def bench_random(args, rows):
    for n in args.sizes:
        lp, opt = random_sparse_lp(n, seed=args.seed)
        print(f"random sparse LP m = n = {n}, nnz = {lp.A_ub.nnz}, optimum {opt:.8g}")
        base = None
        for label, fn, warm, per_eps in entries(args):
            for eps in (args.eps if per_eps else [None]):
                try:
                    (st, obj, it), t = timed(
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
    ap.add_argument("--lp-more", action="store_true", help="the lp_more sweep (from_mps)")
    ap.add_argument("--random", action="store_true")
    ap.add_argument("--problems", nargs="*", help="Netlib / lp_more names (default: all)")
    ap.add_argument("--sizes", nargs="*", type=int, default=[5000, 20000])
    ap.add_argument("--batch", type=int, default=0,
                    help="B: time a batch of B small LPs (halpern_pdhg_batch vs loops, MPAX vmap)")
    ap.add_argument("--batch-shape", nargs=2, type=int, default=[20, 50], metavar=("M", "N"))
    ap.add_argument("--eps", nargs="*", type=float, default=[1e-4, 1e-6])
    ap.add_argument("--lp-more-eps", nargs="*", type=float, default=[1e-4])
    ap.add_argument("--backends", nargs="*", default=["numpy", "jax"], choices=["numpy", "jax"])
    ap.add_argument("--presolve", nargs="*", default=["auto"], choices=["auto", "on", "off"],
                    help="our solver's presolve setting(s); one column each")
    ap.add_argument("--solvers", nargs="*", default=list(SOLVERS), choices=SOLVERS)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--obj-check", type=float, default=1e-4,
                    help="solved = optimal with the objective within this (relative) of the known")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mpax-iters", type=int, default=2**31 - 1,
                    help="MPAX's iteration limit (it has no time limit)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/lp.json")
    args = ap.parse_args()
    MPAX_ITERS[0] = args.mpax_iters
    if not (args.netlib or args.lp_more or args.random or args.batch):
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
    if args.lp_more:
        bench_lp_more(args, rows)
    write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
