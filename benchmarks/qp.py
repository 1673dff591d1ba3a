"""Benchmark: cvxkit's OSQP-style ADMM against OSQP and Clarabel; batches on JAX against OSQP in a
loop, jaxopt's BoxOSQP and qpax.

Problem classes (OSQP's benchmark suite, Stellato et al. 2020, Appendix; ``--n`` is the number of
QP **variables**, each class's own size parameter is derived from it; nonzeros N(0, 1)):

* ``random``: P = M M^T + 1e-2 I, M 15% dense; A (10n x n) 15% dense; l = -rand, u = rand.
* ``eq``: the same P; A (n/2 x n) 15% dense; l = u = A x0 (equality-constrained).
* ``portfolio``: k = n/101 factors, 100k assets; min x'Dx + y'y - mu'x s.t. y = F'x, 1'x = 1,
  0 <= x <= 1; F 50% dense, D = diag(rand * sqrt(k)).
* ``lasso``: k = n/102 features, 100k data; min y'y + lambda 1't s.t. y = A_d x - b, -t <= x <= t;
  A_d 15% dense, lambda = ||A_d' b||_inf / 5.
* ``huber``: k = n/301 features, 100k data; min u'u/2 + 1'(r + s) s.t. A_d x - b - u = r - s,
  r, s >= 0; A_d 15% dense, 5% outliers.
* ``control``: nx = n/16 states, nu = nx/2 inputs, horizon 10; stable random dynamics, box
  constraints on states and inputs (the OSQP benchmark's MPC problem).

Each solver is run at ``eps_abs = eps_rel = eps`` (OSQP, cvxkit) or with all of Clarabel's
tolerances at ``eps``; times are wall-clock seconds of the whole call (set-up, factorization and
solve), best of ``--repeat``. ``obj diff`` is the objective's relative difference to a
Clarabel solve at its default tolerance (1e-8), when ``--no-ref`` is not given.

Batch: ``--batch B`` random QPs with n = 10, m = 20 (dense, P = M M^T/n + 1e-2 I) at ``eps``:
cvxkit JAX (one vmapped call; compile time reported apart, the timed calls reuse the compiled
code) on one device and, in a second row, split over ``--batch-devices`` CPU devices (default:
one per core; the script sets ``XLA_FLAGS=--xla_force_host_platform_device_count`` before JAX
starts, for the whole process: the class rows above also see several devices and use the
first), a Python loop of OSQP solves (set-up + solve each, one core), jaxopt's vmapped
``BoxOSQP`` and qpax (each when importable, on one device; compile apart).

The machine has 2 cores; other work may be running: repeat and keep the best.

    python benchmarks/qp.py --classes random eq portfolio lasso huber control --n 100 1000 5000
    python benchmarks/qp.py --batch 1000 --eps 1e-5
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as spa

from common import best_of, write_results

from cvxkit.solvers.admm_qp import admm_qp


# --- problem classes -------------------------------------------------------------------------
def _rand(rng, m, n, density):
    return spa.random(m, n, density=density, data_rvs=rng.standard_normal, format="csc",
                      random_state=rng)


def random_qp(n, rng):
    m = 10 * n
    M = _rand(rng, n, n, 0.15)
    P = (M @ M.T).tocsc() + 1e-2 * spa.eye(n, format="csc")
    A = _rand(rng, m, n, 0.15)
    return P, rng.standard_normal(n), A, -rng.random(m), rng.random(m)


def eq_qp(n, rng):
    m = max(1, n // 2)
    M = _rand(rng, n, n, 0.15)
    P = (M @ M.T).tocsc() + 1e-2 * spa.eye(n, format="csc")
    A = _rand(rng, m, n, 0.15)
    b = A @ rng.standard_normal(n)
    return P, rng.standard_normal(n), A, b, b.copy()


def portfolio_qp(n, rng):
    k = max(1, n // 101)
    na = 100 * k
    F = _rand(rng, na, k, 0.5)
    D = spa.diags(rng.random(na) * np.sqrt(k))
    mu = rng.standard_normal(na)
    P = spa.block_diag([2 * D, 2 * spa.eye(k)], format="csc")
    q = np.r_[-mu, np.zeros(k)]
    A = spa.vstack([spa.hstack([spa.csc_matrix(np.ones((1, na))), spa.csc_matrix((1, k))]),
                    spa.hstack([F.T, -spa.eye(k)]),
                    spa.hstack([spa.eye(na), spa.csc_matrix((na, k))])], format="csc")
    l = np.r_[1.0, np.zeros(k), np.zeros(na)]
    u = np.r_[1.0, np.zeros(k), np.ones(na)]
    return P, q, A, l, u


def lasso_qp(n, rng):
    k = max(1, n // 102)
    md = 100 * k
    Ad = _rand(rng, md, k, 0.15)
    x_true = (rng.random(k) > 0.5) * rng.standard_normal(k) / np.sqrt(k)
    b = Ad @ x_true + rng.standard_normal(md)
    lam = np.abs(Ad.T @ b).max() / 5
    P = spa.block_diag([spa.csc_matrix((k, k)), 2 * spa.eye(md), spa.csc_matrix((k, k))], format="csc")
    q = np.r_[np.zeros(k + md), lam * np.ones(k)]
    Ik = spa.eye(k)
    A = spa.vstack([spa.hstack([Ad, -spa.eye(md), spa.csc_matrix((md, k))]),
                    spa.hstack([Ik, spa.csc_matrix((k, md)), -Ik]),
                    spa.hstack([Ik, spa.csc_matrix((k, md)), Ik])], format="csc")
    l = np.r_[b, -np.inf * np.ones(k), np.zeros(k)]
    u = np.r_[b, np.zeros(k), np.inf * np.ones(k)]
    return P, q, A, l, u


def huber_qp(n, rng):
    k = max(1, n // 301)
    md = 100 * k
    Ad = _rand(rng, md, k, 0.15)
    x_true = rng.standard_normal(k) / np.sqrt(k)
    out = rng.random(md) < 0.05
    b = Ad @ x_true + np.where(out, 10 * rng.random(md), 0.5 * rng.standard_normal(md))
    Im = spa.eye(md)
    P = spa.block_diag([spa.csc_matrix((k, k)), Im, spa.csc_matrix((2 * md, 2 * md))], format="csc")
    q = np.r_[np.zeros(k + md), np.ones(2 * md)]
    A = spa.bmat([[Ad, -Im, -Im, Im], [None, None, Im, None], [None, None, None, Im]], format="csc")
    l = np.r_[b, np.zeros(2 * md)]
    u = np.r_[b, np.inf * np.ones(2 * md)]
    return P, q, A, l, u


def control_qp(n, rng, T=10):
    nx = max(2, n // 16)
    nu = max(1, nx // 2)
    Ad = np.eye(nx) + 0.1 * rng.standard_normal((nx, nx))
    lam, V = np.linalg.eig(Ad)  # make the dynamics stable: |eig| < 1
    lam = np.where(np.abs(lam) < 1 - 1e-2, lam, lam / (np.abs(lam) + 1e-2))
    Ad = (V @ np.diag(lam) @ np.linalg.inv(V)).real
    Bd = rng.standard_normal((nx, nu))
    Q = np.diag(rng.random(nx) * (rng.random(nx) < 0.7))
    R = 0.1 * np.eye(nu)
    QN = sla.solve_discrete_are(Ad, Bd, Q, R)
    umax, xmax = rng.random(nu), 1.0 + rng.random(nx)
    x0 = (rng.random(nx) - 0.5) * xmax
    P = spa.block_diag([spa.kron(spa.eye(T), Q), QN, spa.kron(spa.eye(T), R)], format="csc")
    P = (P + P.T) / 2  # QN from the Riccati solver is symmetric up to round-off
    Ax = spa.kron(spa.eye(T + 1), -spa.eye(nx)) + spa.kron(spa.eye(T + 1, k=-1), Ad)
    Bu = spa.kron(spa.vstack([spa.csc_matrix((1, T)), spa.eye(T)]), Bd)
    Aeq = spa.hstack([Ax, Bu])
    beq = np.r_[-x0, np.zeros(T * nx)]
    nv = (T + 1) * nx + T * nu
    A = spa.vstack([Aeq, spa.eye(nv)], format="csc")
    l = np.r_[beq, np.tile(-xmax, T + 1), np.tile(-umax, T)]
    u = np.r_[beq, np.tile(xmax, T + 1), np.tile(umax, T)]
    return spa.csc_matrix(P), np.zeros(nv), A, l, u


CLASSES = {"random": random_qp, "eq": eq_qp, "portfolio": portfolio_qp, "lasso": lasso_qp,
           "huber": huber_qp, "control": control_qp}


# --- solvers ---------------------------------------------------------------------------------
def run_cvxkit(P, q, A, l, u, eps, repeat, max_iter):
    r, t = best_of(repeat, lambda: admm_qp(P, q, A, l, u, eps_abs=eps, eps_rel=eps, max_iter=max_iter))
    return dict(time=t, obj=r.objective, iters=r.iterations, status=r.status.value,
                note=f"{r.info['linsys']}; setup {r.setup_time:.2f}s, {r.info['rho_updates']} rho updates")


def run_osqp(P, q, A, l, u, eps, repeat, max_iter):
    import osqp

    def solve():
        s = osqp.OSQP()
        s.setup(spa.triu(P, format="csc"), q, spa.csc_matrix(A), l, u, eps_abs=eps, eps_rel=eps,
                max_iter=max_iter, verbose=False)
        return s.solve(raise_error=False)

    r, t = best_of(repeat, solve)
    return dict(time=t, obj=r.info.obj_val, iters=r.info.iter, status=r.info.status,
                note=f"{r.info.rho_updates} rho updates")


def clarabel_data(P, q, A, l, u):
    import clarabel

    A = spa.csr_matrix(A)
    eq = np.isfinite(l) & (l == u)
    lo = np.isfinite(l) & ~eq
    up = np.isfinite(u) & ~eq
    blocks = [A[eq], A[up], -A[lo]]
    b = np.r_[l[eq], u[up], -l[lo]]
    cones = [c for c, k in ((clarabel.ZeroConeT(int(eq.sum())), eq.sum()),
                            (clarabel.NonnegativeConeT(int(up.sum() + lo.sum())), up.sum() + lo.sum()))
             if k]
    return spa.triu(P, format="csc"), q, spa.vstack(blocks, format="csc"), b, cones


def run_clarabel(P, q, A, l, u, eps, repeat, max_iter=200):
    import clarabel

    Pc, qc, Ac, b, cones = clarabel_data(P, q, A, l, u)

    def solve():
        s = clarabel.DefaultSettings()
        s.verbose = False
        if eps is not None:
            s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = eps
        s.max_iter = max_iter
        return clarabel.DefaultSolver(Pc, qc, Ac, b, cones, s).solve()

    r, t = best_of(repeat, solve)
    return dict(time=t, obj=r.obj_val, iters=r.iterations, status=str(r.status), note="")


def bench_class(name, n, args, rng_seed):
    rng = np.random.default_rng(rng_seed)
    t = time.perf_counter()
    P, q, A, l, u = CLASSES[name](n, rng)
    gen = time.perf_counter() - t
    print(f"\n{name}: {P.shape[0]} variables, {A.shape[0]} constraints, nnz(P) + nnz(A) = "
          f"{spa.csc_matrix(P).nnz + spa.csc_matrix(A).nnz} (generated in {gen:.1f} s)", flush=True)
    ref = None
    if not args.no_ref:
        ref = run_clarabel(P, q, A, l, u, None, 1)["obj"]
    rows = []
    for eps in args.eps:
        for solver, fn in (("cvxkit admm", run_cvxkit), ("OSQP", run_osqp), ("Clarabel", run_clarabel)):
            if solver in args.skip:
                continue
            r = fn(P, q, A, l, u, eps, args.repeat, args.max_iter) if solver != "Clarabel" else \
                fn(P, q, A, l, u, eps, args.repeat)
            r.update(cls=name, n=P.shape[0], m=A.shape[0], eps=eps, solver=solver)
            r["obj_diff"] = abs(r["obj"] - ref) / max(abs(ref), 1e-12) if ref is not None else None
            rows.append(r)
            print(f"  eps={eps:g} {solver:<12} {r['time']:9.3f} s  iters {r['iters']:>6}  "
                  f"{r['status']:<24} obj {r['obj']:.10g}  {r['note']}", flush=True)
    return rows


# --- batches ---------------------------------------------------------------------------------
def batch_data(B, n, m, seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((B, n, n))
    P = M @ M.transpose(0, 2, 1) / n + 1e-2 * np.eye(n)
    return P, rng.standard_normal((B, n)), rng.standard_normal((B, m, n)), \
        -rng.random((B, m)), rng.random((B, m))


def timed_jax(label, run, arrays, repeat, x_ref):
    """A batch row for a jitted JAX solver ``run``: compile time apart, best-of-``repeat`` time,
    and the largest deviation of its solutions from ``x_ref``."""
    import jax
    import jax.numpy as jnp

    args = [jnp.asarray(v) for v in arrays]
    tc = time.perf_counter()
    comp = run.lower(*args).compile()
    tc = time.perf_counter() - tc
    x, t = best_of(repeat, lambda: jax.block_until_ready(comp(*args)))
    return dict(solver=label, time=t, compile=tc,
                note=f"max |x - x_cvxkit| {np.abs(np.asarray(x) - x_ref).max():.1e}")


def bench_batch(args):
    B, n, m, eps = args.batch, 10, 20, args.batch_eps
    P, q, A, l, u = batch_data(B, n, m, args.seed)
    rows = []
    cold = admm_qp(P, q, A, l, u, backend="jax", eps_abs=eps, eps_rel=eps)
    res, t = best_of(args.repeat, lambda: admm_qp(P, q, A, l, u, backend="jax", eps_abs=eps,
                                                  eps_rel=eps))
    ok = sum(s.value == "optimal" for s in res.info["statuses"])
    x_ref = res.x
    rows.append(dict(solver="cvxkit admm (JAX, one call)", time=t, compile=cold.compile_time,
                     note=f"{ok}/{B} optimal, iterations max {np.max(res.iterations)}, "
                          f"mean {np.mean(res.info['iterations']):.0f}"))
    import jax

    if len(jax.devices()) > 1:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
        cold = admm_qp(P, q, A, l, u, backend="jax", eps_abs=eps, eps_rel=eps, mesh=mesh)
        res, t = best_of(args.repeat, lambda: admm_qp(P, q, A, l, u, backend="jax", eps_abs=eps,
                                                      eps_rel=eps, mesh=mesh))
        kind = jax.devices()[0].platform.upper()
        rows.append(dict(solver=f"cvxkit admm (JAX, {mesh.devices.size} {kind} devices)", time=t,
                         compile=cold.compile_time,
                         note=f"one call, each device a block of the batch; max |x - x_1 device| "
                              f"{np.abs(res.x - x_ref).max():.1e}"))
    import osqp

    def loop():
        xs, its = [], []
        for i in range(B):
            s = osqp.OSQP()
            s.setup(spa.triu(spa.csc_matrix(P[i]), format="csc"), q[i], spa.csc_matrix(A[i]), l[i],
                    u[i], eps_abs=eps, eps_rel=eps, verbose=False)
            r = s.solve(raise_error=False)
            xs.append(r.x)
            its.append(r.info.iter)
        return np.array(xs), np.array(its)

    (xo, its), t = best_of(args.repeat, loop)
    rows.append(dict(solver="OSQP, Python loop", time=t, compile=None,
                     note=f"iterations max {its.max()}, mean {its.mean():.0f}; "
                          f"max |x - x_cvxkit| {np.abs(xo - x_ref).max():.1e}"))
    try:
        from jaxopt import BoxOSQP
    except ImportError:
        BoxOSQP = None
    if BoxOSQP is not None:
        with jax.enable_x64(True):
            solver = BoxOSQP(tol=eps, maxiter=4000, jit=True)
            run = jax.jit(jax.vmap(lambda P, q, A, l, u: solver.run(
                params_obj=(P, q), params_eq=A, params_ineq=(l, u)).params.primal[0]))
            rows.append(timed_jax("jaxopt BoxOSQP (vmap)", run, (P, q, A, l, u), args.repeat,
                                  x_ref))
    try:
        import qpax
    except ImportError:
        qpax = None
    if qpax is not None:
        with jax.enable_x64(True):
            G = np.concatenate([A, -A], axis=1)
            h = np.concatenate([u, -l], axis=1)
            Ae, be = np.zeros((B, 0, n)), np.zeros((B, 0))
            run = jax.jit(jax.vmap(lambda *a: qpax.solve_qp(*a, solver_tol=eps)[0]))
            rows.append(timed_jax("qpax (interior point, vmap)", run, (P, q, Ae, be, G, h),
                                  args.repeat, x_ref))
    base = next(r["time"] for r in rows if r["solver"].startswith("OSQP"))
    print(f"\nbatch of {B} QPs, n = {n}, m = {m}, eps = {eps:g} (times: best of {args.repeat}, "
          f"compile apart)")
    print(f"  {'solver':<30} {'time s':>9} {'vs OSQP loop':>13} {'compile s':>10}  note")
    for r in rows:
        r.update(batch=B, eps=eps, speedup_vs_osqp_loop=base / r["time"])
        comp = "-" if r["compile"] is None else f"{r['compile']:.2f}"
        print(f"  {r['solver']:<30} {r['time']:9.4f} {base / r['time']:12.1f}x {comp:>10}  {r['note']}")
    return rows


def print_table(rows):
    print(f"\n{'class':<10} {'n':>6} {'m':>7} {'eps':>6} {'solver':<12} {'time s':>9} "
          f"{'/OSQP':>6} {'/Clarabel':>9} {'iters':>6} {'obj diff':>9}  status")
    by = {(r["cls"], r["n"], r["eps"], r["solver"]): r for r in rows}
    for r in rows:
        o = by.get((r["cls"], r["n"], r["eps"], "OSQP"))
        c = by.get((r["cls"], r["n"], r["eps"], "Clarabel"))
        ro = f"{r['time'] / o['time']:.2f}" if o else "-"
        rc = f"{r['time'] / c['time']:.2f}" if c else "-"
        od = "-" if r["obj_diff"] is None else f"{r['obj_diff']:.1e}"
        print(f"{r['cls']:<10} {r['n']:>6} {r['m']:>7} {r['eps']:>6g} {r['solver']:<12} "
              f"{r['time']:9.3f} {ro:>6} {rc:>9} {r['iters']:>6} {od:>9}  {r['status']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--classes", nargs="*", default=[], choices=sorted(CLASSES))
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--eps", type=float, nargs="+", default=[1e-3, 1e-5])
    p.add_argument("--repeat", type=int, default=2, help="timed runs per solver (best is kept)")
    p.add_argument("--max-iter", type=int, default=100_000)
    p.add_argument("--skip", nargs="*", default=[], help="solvers to skip, e.g. Clarabel")
    p.add_argument("--no-ref", action="store_true", help="no Clarabel reference objective")
    p.add_argument("--batch", type=int, default=0, help="batch size (0: no batch benchmark)")
    p.add_argument("--batch-eps", type=float, default=1e-5)
    p.add_argument("--batch-devices", type=int, default=os.cpu_count() or 1,
                   help="host devices for the batch's extra cvxkit row (one per core; 1: none)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="write all rows as JSON here")
    args = p.parse_args(argv)
    if args.batch and args.batch_devices > 1 and "jax" not in sys.modules:
        # JAX reads this when it starts: one CPU device per core, for the batch's mesh row
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.batch_devices}")
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": np.__version__}
    print("environment:", env)
    rows = []
    for name in args.classes:
        for n in args.n:
            rows += bench_class(name, n, args, args.seed)
    if rows:
        print_table(rows)
    if args.batch:
        rows += bench_batch(args)
    if args.out:
        write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
