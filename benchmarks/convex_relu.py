"""Benchmark: convex two-layer ReLU training — cvxkit's ADMM and augmented Lagrangian (numpy, JAX)
and BCD (gated) against CVXPY + Clarabel, CVXPY + SCS and a plain numpy FISTA; BCD on a lasso
against scikit-learn's ``Lasso`` and FISTA.

**Accuracy target** (the issue's): the reference objective within 1e-4 (relative) with cone
violations at most ``VIOLATION`` = 1e-6 times max |X u_j| (`within`).

**Augmented Lagrangian** (``relu_al``, in the ReLU rows and the sweep): its tol ladder 1e-3,
1e-4, 1e-5 with ``constraint_tol=1e-6`` (its own stopping rule: a certified gap), and an oracle
stop (`al_oracle`: a callback ends the run once the monitored objective and violation meet the
target, checked every 10 iterations).

**Sweep** (``--held-out``, ``--beta-sweep 1e-4 1e-3 1e-2 1e-1``, ``--sweep-size``): the issue's
held-out instance (`held_out`) and beta = (beta / n) n on the benchmark data, each with Clarabel,
the ADMM ladder, the AL rows and ``prob.solve()`` at default settings (`default_rows`;
``--default-only`` runs just Clarabel and that).

**Defaults** (``--defaults n,d,P``): every method of each variant and loss by its tol ladder on
``--defaults-backend``: the measurement behind ``ConvexReLU.default_method``.

Data (seeded): X (n, d) standard normal with a ones column (bias), y from a planted ReLU network
with 5 neurons plus noise 0.1; ``n_patterns = P`` gates; beta = 1e-4 * n (the squared loss is a
sum, so beta grows with n to keep the same weight per sample: 1e-4 in the mean-loss terms of scnn,
whose experiments use 1e-3).

**ReLU** (C-ReLU, squared loss): the reference objective is CVXPY + Clarabel at tolerance 1e-8
when it is run (``--cvxpy-max-n``: skipped above this n, the issue measured > 120 s at n = 3000,
and its time is then reported as "skipped"), else our ADMM at tol 1e-9. "time to 1e-4" is the
wall time (set-up included, JAX compilation excluded and printed apart) of the first solve of
the ladder tol = 1e-3, 1e-4, ... that meets the accuracy target. SCS runs at eps 1e-4 (time
limit ``--scs-time-limit``).

**Gated ReLU** (C-GReLU, squared loss, same data): BCD (``prob.solve("bcd")``: cyclic,
proximal-gradient block updates, Anderson extrapolation, one block per pattern) against plain
FISTA (constant step 1/L, L by power iteration, no restart) — time to 1e-4 and to 1e-6 relative
to the reference (Clarabel when run, else BCD at tol 1e-10), with BCD's sweeps and accepted
extrapolations. Both are stopped the same way, as soon as their objective is within the target
of the reference (FISTA checks every 10 iterations, BCD every sweep, both backends);
``--gated-ladder`` times BCD's own stopping rule instead (the tol ladder above: on these
ill-conditioned programs a small proximal-gradient mapping comes long before a small objective
gap, so it needs tol 1e-7 to 1e-8). ``--gated-updates exact`` adds BCD with exact block updates.

**Lasso** n = 2000, d = 5000 (Gaussian design, 5% nonzero planted weights, lambda = 0.1 ||A^T y||_inf):
BCD (coordinates, cyclic, exact; with Anderson extrapolation, the default, and without) numpy
and JAX, scikit-learn ``Lasso`` (alpha = lambda / n, tol tightened) and FISTA: time to 1e-6
relative of the best objective found by any of them at tight tolerance.

The machine is shared (2 cores, other jobs running): repeat and keep the best, and set
``OPENBLAS_NUM_THREADS=1`` there (oversubscribed BLAS threads made small products 50-100x slower).

    python benchmarks/convex_relu.py                      # all three sizes, lasso
    python benchmarks/convex_relu.py --sizes 200,10,20 --backend numpy jax --no-lasso
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from common import best_of, write_results

from cvxkit.problems import ConvexReLU
from cvxkit.solvers.bcd import bcd


#: beta / n (the group-penalty weight per sample)
BETA_PER_SAMPLE = 1e-4


def data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    W = rng.standard_normal((5, d))
    a = rng.standard_normal(5)
    y = np.maximum(X @ W.T, 0) @ a + 0.1 * rng.standard_normal(n)
    return X, y


def fista(A, y, lam, penalty, block, f_target=None, rtol=1e-4, max_iter=100_000, objective=None):
    """Plain FISTA for 1/2||Ax - y||^2 + lam * penalty; stops when ``objective(x)`` is within
    ``rtol`` of ``f_target`` (checked every 10 iterations); returns (x, iterations)."""
    p = A.shape[1]
    v = np.random.default_rng(0).standard_normal(p)
    for _ in range(50):
        v = A.T @ (A @ v)
        v /= np.linalg.norm(v)
    L = float(np.linalg.norm(A.T @ (A @ v)))
    x = np.zeros(p)
    z, t = x.copy(), 1.0
    for k in range(1, max_iter + 1):
        g = A.T @ (A @ z - y)
        u = z - g / L
        if penalty == "l1":
            xn = np.sign(u) * np.maximum(np.abs(u) - lam / L, 0)
        else:
            U = u.reshape(-1, block)
            nr = np.linalg.norm(U, axis=1, keepdims=True)
            xn = (U * np.maximum(0, 1 - lam / L / np.maximum(nr, 1e-300))).ravel()
        tn = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = xn + (t - 1) / tn * (xn - x)
        x, t = xn, tn
        if f_target is not None and k % 10 == 0 and objective(x) <= f_target * (1 + rtol):
            return x, k
    return x, max_iter


#: the issue's accuracy target: objective within 1e-4 (relative) of the reference, cone
#: violation at most VIOLATION times max |X u_j|
VIOLATION = 1e-6


def relative_violation(prob, W):
    W = np.asarray(W)
    scale = float(np.abs(prob.X @ W.reshape(-1, prob.d).T).max())
    return prob.max_violation(W) / scale if scale > 0 else 0.0


def within(prob, res, f_ref, rtol=1e-4, viol=VIOLATION):
    if res.x is None:
        return False
    W = np.asarray(res.x)
    return (abs(prob.objective(W) - f_ref) <= rtol * abs(f_ref)
            and relative_violation(prob, W) <= viol)


def ladder(prob, method, backend, f_ref, rtol, repeat, tols=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
           **kw):
    """First tol of ``tols`` whose solve is within rtol of f_ref: (time, tol, res)."""
    for tol in tols:
        if backend == "jax":
            prob.solve(method, backend=backend, tol=tol, **{**kw, "max_iter": 2})  # compiles
        res, t = best_of(repeat, lambda: prob.solve(method, backend=backend, tol=tol, **kw))
        if within(prob, res, f_ref, rtol):
            return res.setup_time + res.solve_time, tol, res
    return float("nan"), None, res


def al_oracle(prob, backend, f_ref, rtol, repeat, max_iter):
    """relu_al stopped as soon as its objective is within ``rtol`` of ``f_ref`` with the current
    violation at most VIOLATION (its monitor, checked every 10 iterations): the algorithm's
    speed apart from its certificate. (time, res); NaN when max_iter does not get there."""
    kw = dict(backend=backend, tol=1e-12, check_every=10, max_iter=max_iter,
              callback=lambda v: (abs(v["objective"] - f_ref) <= rtol * abs(f_ref)
                                  and v["violation"] <= VIOLATION))
    if backend == "jax":
        prob.solve("relu_al", **{**kw, "max_iter": 2})
    res, _ = best_of(repeat, lambda: prob.solve("relu_al", **kw))
    ok = within(prob, res, f_ref, rtol)
    return (res.setup_time + res.solve_time if ok else float("nan")), res


def oracle_stop(prob, backend, f_ref, rtol, args, **kw):
    """BCD stopped like FISTA: as soon as its objective is within ``rtol`` of ``f_ref`` (checked
    after every sweep, bcd's ``check_every=1``): (time, "oracle", res); the time is NaN when
    ``--bcd-max-iter`` sweeps do not get there."""
    kw.update(backend=backend, tol=1e-14, callback=lambda v: v["objective"] <= f_ref * (1 + rtol))
    compile_time = prob.solve("bcd", max_iter=1, **kw).compile_time  # JAX compiles once
    res, _ = best_of(args.repeat, lambda: prob.solve("bcd", max_iter=args.bcd_max_iter, **kw))
    res = res.replace(compile_time=compile_time)
    ok = within(prob, res, f_ref, rtol)
    return (res.setup_time + res.solve_time if ok else float("nan")), "oracle", res


def cvxpy_time(prob, solver, **opts):
    t = time.perf_counter()
    res = prob._solve_cvxpy({"solver": solver, **opts})
    return time.perf_counter() - t, res


def relu_rows(n, d, P, args):
    X, y = data(n, d)
    beta = args.beta_per_sample * n
    prob = ConvexReLU(X, y, n_patterns=P, beta=beta, variant="relu", seed=0)
    rows = []
    print(f"\n== ReLU (n, d, P) = ({n}, {d}, {P}); patterns kept {prob.P}, beta {beta:g}")
    if n <= args.cvxpy_max_n:
        t_cl, ref = cvxpy_time(prob, "CLARABEL", tol_gap_abs=1e-8, tol_gap_rel=1e-8, tol_feas=1e-8)
        f_ref, ref_name = ref.objective, "clarabel"
        print(f"CVXPY+Clarabel: {t_cl:.2f} s, objective {f_ref:.10g} ({ref.status})")
    else:
        t_cl, cl = cvxpy_time(prob, "CLARABEL", time_limit=args.clarabel_time_limit)
        ref = prob.solve(tol=1e-7, max_iter=200_000)
        f_ref, ref_name = ref.objective, "admm 1e-7"
        print(f"CVXPY+Clarabel: {t_cl:.1f} s with time_limit {args.clarabel_time_limit} s "
              f"({cl.info.get('cvxpy_status', cl.status)}, objective {cl.objective:.10g}); "
              f"reference = ADMM at tol 1e-7: {f_ref:.10g} ({ref.status}, {ref.iterations} it)")
        if cl.status.value != "optimal":
            t_cl = float("nan")
    if n <= args.scs_max_n:
        t_scs, scs = cvxpy_time(prob, "SCS", eps=1e-4, time_limit_secs=args.scs_time_limit)
        ok = scs.x is not None and within(prob, scs, f_ref)
        print(f"CVXPY+SCS (eps 1e-4): {t_scs:.2f} s, objective {scs.objective:.10g}, "
              f"within 1e-4: {ok}")
    else:
        t_scs, ok = float("nan"), False
        print("CVXPY+SCS: skipped")
    rows.append(dict(variant="relu", n=n, d=d, P=prob.P, solver="cvxpy+clarabel", time=t_cl,
                     objective=f_ref if ref_name == "clarabel" else None))
    rows.append(dict(variant="relu", n=n, d=d, P=prob.P, solver="cvxpy+scs", time=t_scs,
                     within=ok))
    for backend in args.backend:
        t, tol, res = ladder(prob, "relu_admm", backend, f_ref, 1e-4, args.repeat)
        ratio_cl = t_cl / t if t == t else float("nan")
        ratio_scs = t_scs / t if t == t else float("nan")
        print(f"ADMM ({backend}): {t:.3f} s to 1e-4 (tol {tol}, {res.iterations} it, "
              f"compile {res.compile_time:.1f} s); Clarabel/ADMM {ratio_cl:.1f}x, "
              f"SCS/ADMM {ratio_scs:.1f}x")
        rows.append(dict(variant="relu", n=n, d=d, P=prob.P, solver=f"admm-{backend}", time=t,
                         tol=tol, iterations=res.iterations, compile=res.compile_time,
                         vs_clarabel=ratio_cl, vs_scs=ratio_scs, reference=ref_name))
    rows += al_rows(prob, f_ref, t_cl, args, dict(variant="relu", n=n, d=d, P=prob.P))
    return rows


def al_rows(prob, f_ref, t_cl, args, label):
    """relu_al on each back end: its tol ladder (its own stopping rule: certified gap, violation
    1e-6) and the oracle stop (`al_oracle`)."""
    rows = []
    if args.no_al:
        return rows
    for backend in args.backend:
        t, tol, res = ladder(prob, "relu_al", backend, f_ref, 1e-4, args.repeat,
                             tols=(1e-3, 1e-4, 1e-5), constraint_tol=VIOLATION,
                             max_iter=args.al_max_iter)
        t_o, res_o = al_oracle(prob, backend, f_ref, 1e-4, args.repeat, args.al_max_iter)
        print(f"AL ({backend}): {t:.3f} s to 1e-4 (tol {tol}, {res.iterations} it, "
              f"{res.info['outer']} updates, status {res.status.value}); oracle stop "
              f"{t_o:.3f} s ({res_o.iterations} it); Clarabel/AL {t_cl / t:.2f}x "
              f"(oracle {t_cl / t_o:.2f}x)")
        rows.append(dict(**label, solver=f"al-{backend}", time=t, tol=tol,
                         iterations=res.iterations, status=res.status.value,
                         oracle_time=t_o, oracle_iterations=res_o.iterations,
                         vs_clarabel=t_cl / t, oracle_vs_clarabel=t_cl / t_o))
    return rows


def held_out():
    """The issue's held-out instance: (n, d, P) = (1000, 20, 50), X standard normal, y =
    ReLU(X w) + 0.1 noise (w standard normal), beta = 1e-3, seed 3 (data and gates)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 20))
    w = rng.standard_normal(20)
    y = np.maximum(X @ w, 0) + 0.1 * rng.standard_normal(1000)
    return ConvexReLU(X, y, n_patterns=50, beta=1e-3, seed=3)


METHODS = {("relu", "squared"): ("relu_admm", "relu_al"),
           ("gated", "squared"): ("relu_admm", "relu_al", "rfista", "bcd"),
           ("gated", "logistic"): ("relu_admm", "relu_al", "rfista")}


def defaults_rows(args):
    """Every method of each variant and loss (classification: labels sign(y - median y)), time
    to the reference within 1e-4 with violation <= 1e-6 by its own stopping rule (the tol
    ladder), on ``--defaults-backend``: the measurement behind ``ConvexReLU.default_method``."""
    n, d, P = (int(v) for v in args.defaults.split(","))
    X, y = data(n, d)
    rows = []
    for variant in ("relu", "gated"):
        for loss in ("squared", "logistic", "hinge"):
            t = y if loss == "squared" else np.where(y > np.median(y), 1.0, -1.0)
            prob = ConvexReLU(X, t, n_patterns=P, beta=args.beta_per_sample * n, loss=loss,
                              variant=variant, seed=0)
            t_cl, ref = cvxpy_time(prob, "CLARABEL", tol_gap_abs=1e-8, tol_gap_rel=1e-8,
                                   tol_feas=1e-8)
            print(f"\n== {variant} {loss} ({n}, {d}, {prob.P}): Clarabel {t_cl:.2f} s, "
                  f"objective {ref.objective:.10g} ({ref.status})")
            label = dict(variant=variant, loss=loss, n=n, d=d, P=prob.P)
            rows.append(dict(**label, solver="cvxpy+clarabel", time=t_cl))
            for m in METHODS.get((variant, loss), ("relu_admm", "relu_al")):
                kw = {"constraint_tol": VIOLATION} if m == "relu_al" else {}
                tm, tol, res = ladder(prob, m, args.defaults_backend, ref.objective, 1e-4,
                                      args.repeat, max_iter=args.al_max_iter, **kw)
                print(f"{m} ({args.defaults_backend}): {tm:.3f} s (tol {tol}, "
                      f"{res.iterations} it, last status {res.status.value}); Clarabel/"
                      f"{m} {t_cl / tm:.2f}x")
                rows.append(dict(**label, solver=m, backend=args.defaults_backend, time=tm,
                                 tol=tol, iterations=res.iterations, vs_clarabel=t_cl / tm))
    return rows


def sweep_rows(args):
    """Clarabel, the ADMM and the AL (JAX) on the held-out instance and across beta / n at
    (1000, 20, 50) (the benchmark's data)."""
    cases = [("held-out", held_out())] if args.held_out else []
    for b in args.beta_sweep:
        n, d, P = (int(v) for v in args.sweep_size.split(","))
        X, y = data(n, d, seed=args.sweep_seed)
        cases.append((f"beta/n={b:g}", ConvexReLU(X, y, n_patterns=P, beta=b * n, seed=0)))
    rows = []
    for name, prob in cases:
        t_cl, ref = cvxpy_time(prob, "CLARABEL", tol_gap_abs=1e-8, tol_gap_rel=1e-8,
                               tol_feas=1e-8)
        f_ref = ref.objective
        print(f"\n== {name} (n, P, beta) = ({prob.n}, {prob.P}, {prob.beta:g}): Clarabel "
              f"{t_cl:.2f} s, objective {f_ref:.10g} ({ref.status})")
        label = dict(case=name, n=prob.n, P=prob.P, beta=prob.beta)
        rows.append(dict(**label, solver="cvxpy+clarabel", time=t_cl, objective=f_ref))
        if args.default_only:
            rows += default_rows(prob, f_ref, t_cl, args, label)
            continue
        for backend in args.backend:
            t, tol, res = ladder(prob, "relu_admm", backend, f_ref, 1e-4, args.repeat,
                                 max_iter=args.admm_max_iter)
            print(f"ADMM ({backend}): {t:.3f} s (tol {tol}, {res.iterations} it, "
                  f"{res.status.value}); Clarabel/ADMM {t_cl / t:.2f}x")
            rows.append(dict(**label, solver=f"admm-{backend}", time=t, tol=tol,
                             iterations=res.iterations, vs_clarabel=t_cl / t))
        rows += al_rows(prob, f_ref, t_cl, args, label)
        rows += default_rows(prob, f_ref, t_cl, args, label)
    return rows


def default_rows(prob, f_ref, t_cl, args, label):
    """``prob.solve()`` at default settings (the default method and its defaults) on each back
    end: time, status, and whether it meets the 1e-4 / 1e-6 target."""
    rows = []
    for backend in args.backend:
        if backend == "jax":
            prob.solve(backend=backend, max_iter=2)
        res, _ = best_of(args.repeat, lambda: prob.solve(backend=backend))
        t, ok = res.setup_time + res.solve_time, within(prob, res, f_ref, 1e-4)
        rel = (res.objective - f_ref) / abs(f_ref)
        print(f"default ({res.method}, {backend}): {t:.3f} s, {res.status.value}, "
              f"{res.iterations} it, objective {rel:+.1e} relative, violation "
              f"{relative_violation(prob, res.x):.1e}, target met: {ok}; Clarabel/default "
              f"{t_cl / t:.2f}x")
        rows.append(dict(**label, solver=f"default-{res.method}-{backend}", time=t,
                         status=res.status.value, iterations=res.iterations, rel=rel,
                         met=bool(ok), vs_clarabel=t_cl / t))
    return rows


def gated_rows(n, d, P, args):
    X, y = data(n, d)
    beta = args.beta_per_sample * n
    prob = ConvexReLU(X, y, n_patterns=P, beta=beta, variant="gated", seed=0)
    print(f"\n== gated (n, d, P) = ({n}, {d}, {P}); patterns {prob.P}")
    if n <= args.cvxpy_max_n:
        f_ref = prob.reference().objective
        ref_name = "clarabel"
    else:
        f_ref = prob.solve("bcd", tol=1e-10, max_iter=100_000).objective
        ref_name = "bcd 1e-10"
    print(f"reference ({ref_name}): {f_ref:.16g}")
    A = np.concatenate([prob.D[:, i:i + 1] * prob.X for i in range(prob.P)], axis=1)
    obj = lambda x: prob.objective(x.reshape(prob.P, prob.d))  # noqa: E731
    rows = []
    for rtol in (1e-4, 1e-6):
        (xf, kf), t_f = best_of(args.repeat, lambda: fista(A, prob.y, prob.beta, "group", prob.d,
                                                          f_ref, rtol, objective=obj,
                                                          max_iter=args.fista_max_iter))
        reached = obj(xf) <= f_ref * (1 + rtol)
        print(f"FISTA (numpy): {t_f:.3f} s to {rtol:g} ({kf} it"
              f"{'' if reached else ', NOT reached: the time is a lower bound'})")
        for update in args.gated_updates:
            for backend in args.backend:
                if args.gated_ladder:
                    t_b, tol_b, res = ladder(prob, "bcd", backend, f_ref, rtol, args.repeat,
                                             update=update)
                else:
                    t_b, tol_b, res = oracle_stop(prob, backend, f_ref, rtol, args, update=update)
                print(f"  BCD ({backend}, {update}): {t_b:.3f} s (tol {tol_b}, {res.iterations} "
                      f"sweeps, {res.info['extrapolations']} extrapolations accepted, compile "
                      f"{res.compile_time:.1f} s), FISTA/BCD {t_f / t_b:.2f}x")
                rows.append(dict(variant="gated", n=n, d=d, P=prob.P, rtol=rtol,
                                 solver=f"bcd-{update}-{backend}", time=t_b, tol=tol_b,
                                 fista=t_f, fista_iters=kf, fista_reached=bool(reached),
                                 sweeps=res.iterations,
                                 extrapolations=res.info["extrapolations"],
                                 vs_fista=t_f / t_b, reference=ref_name))
    return rows


def lasso_rows(args):
    n, p = 2000, 5000
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, p))
    w = np.zeros(p)
    idx = rng.choice(p, p // 20, replace=False)
    w[idx] = rng.standard_normal(idx.size)
    y = A @ w + 0.1 * rng.standard_normal(n)
    lam = 0.1 * float(np.abs(A.T @ y).max())
    obj = lambda x: 0.5 * float(np.sum((A @ x - y) ** 2)) + lam * float(np.abs(x).sum())  # noqa
    print(f"\n== lasso n = {n}, d = {p}, lambda = {lam:.4g}")
    best = bcd(A, y, lam=lam, block_size=1, penalty="l1", tol=1e-12, max_iter=2000)
    f_ref = best.objective
    rows = []
    rtol = 1e-6
    (xf, kf), t_f = best_of(args.repeat, lambda: fista(A, y, lam, "l1", 1, f_ref, rtol,
                                                      objective=obj))
    print(f"FISTA (numpy): {t_f:.3f} s ({kf} it)")
    rows.append(dict(problem="lasso", solver="fista", time=t_f, iterations=kf))
    try:
        from sklearn.linear_model import Lasso

        t_sk = float("nan")
        for tol in (1e-4, 1e-6, 1e-8, 1e-10):
            m = Lasso(alpha=lam / n, fit_intercept=False, tol=tol, max_iter=100_000)
            _, t = best_of(args.repeat, lambda: m.fit(A, y))
            if obj(m.coef_) <= f_ref * (1 + rtol):
                t_sk = t
                break
        print(f"sklearn Lasso: {t_sk:.3f} s (tol {tol})")
        rows.append(dict(problem="lasso", solver="sklearn", time=t_sk, tol=tol))
    except ImportError:
        t_sk = float("nan")
        print("sklearn not installed: skipped")
    for backend in args.backend:
        for acc in ("auto", None):  # Anderson (the default for cyclic) and plain
            t_b = float("nan")
            kw = dict(lam=lam, block_size=1, penalty="l1", backend=backend, accelerate=acc)
            for tol in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
                if backend == "jax":
                    bcd(A, y, tol=tol, **kw)  # compiles once
                res, _ = best_of(args.repeat, lambda: bcd(A, y, tol=tol, **kw))
                if res.objective <= f_ref * (1 + rtol):
                    t_b = res.setup_time + res.solve_time
                    break
            name = "Anderson" if acc else "plain"
            print(f"BCD ({backend}, coordinates, cyclic, {name}): {t_b:.3f} s (tol {tol}, "
                  f"{res.iterations} sweeps, {res.info['extrapolations']} extrapolations, compile "
                  f"{res.compile_time:.1f} s); FISTA/BCD {t_f / t_b:.1f}x, "
                  f"sklearn/BCD {t_sk / t_b:.1f}x")
            rows.append(dict(problem="lasso", solver=f"bcd-{backend}-{name.lower()}", time=t_b,
                             tol=tol, sweeps=res.iterations, vs_fista=t_f / t_b,
                             vs_sklearn=t_sk / t_b))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["200,10,20", "1000,20,50", "3000,50,100"],
                    help="n,d,P triples")
    ap.add_argument("--backend", nargs="+", default=["numpy", "jax"])
    ap.add_argument("--beta-per-sample", type=float, default=BETA_PER_SAMPLE,
                    help="beta / n for the ReLU and gated programs")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cvxpy-max-n", type=int, default=1000,
                    help="skip CVXPY+Clarabel above this n (the issue measured > 120 s at 3000)")
    ap.add_argument("--scs-max-n", type=int, default=1000)
    ap.add_argument("--clarabel-time-limit", type=float, default=120.0,
                    help="above --cvxpy-max-n, run Clarabel with this time limit (s)")
    ap.add_argument("--scs-time-limit", type=float, default=120.0)
    ap.add_argument("--no-relu", action="store_true")
    ap.add_argument("--no-gated", action="store_true")
    ap.add_argument("--no-lasso", action="store_true")
    ap.add_argument("--gated-updates", nargs="+", default=["prox_gradient"],
                    choices=["prox_gradient", "exact"], help="BCD block updates (gated rows)")
    ap.add_argument("--fista-max-iter", type=int, default=100_000)
    ap.add_argument("--bcd-max-iter", type=int, default=100_000)
    ap.add_argument("--gated-ladder", action="store_true",
                    help="gated BCD: time the tol ladder (its own stopping rule) instead of "
                         "stopping it like FISTA, at the reference objective")
    ap.add_argument("--no-al", action="store_true", help="skip relu_al")
    ap.add_argument("--al-max-iter", type=int, default=100_000)
    ap.add_argument("--admm-max-iter", type=int, default=20_000)
    ap.add_argument("--held-out", action="store_true", help="the issue's held-out instance")
    ap.add_argument("--beta-sweep", nargs="*", type=float, default=[],
                    help="beta / n values of the sweep (e.g. 1e-4 1e-3 1e-2 1e-1)")
    ap.add_argument("--sweep-size", default="1000,20,50")
    ap.add_argument("--sweep-seed", type=int, default=0)
    ap.add_argument("--default-only", action="store_true",
                    help="held-out / sweep: only Clarabel and prob.solve() at default settings")
    ap.add_argument("--defaults", default=None, metavar="n,d,P",
                    help="time every method of each variant and loss at this size")
    ap.add_argument("--defaults-backend", default="numpy")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "convex_relu.json"))
    args = ap.parse_args()
    rows = sweep_rows(args) if args.held_out or args.beta_sweep else []
    if args.defaults:
        rows += defaults_rows(args)
    for s in args.sizes:
        n, d, P = (int(v) for v in s.split(","))
        if not args.no_relu:
            rows += relu_rows(n, d, P, args)
        if not args.no_gated:
            rows += gated_rows(n, d, P, args)
    if not args.no_lasso:
        rows += lasso_rows(args)
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "note": "shared machine, other jobs running"}
    write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
