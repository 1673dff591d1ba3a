r"""Sparsity-constrained optimal transport by L-BFGS on its smooth dual.

Liu, Puigcerver & Blondel, "Sparsity-constrained optimal transport", ICLR 2023
(arXiv 2209.15466); the smooth dual of Blondel, Seguy & Rolet, "Smooth and sparse optimal
transport", AISTATS 2018.

Problem: with $\gamma$ = ``reg`` and $k$ = ``max_nz``, over plans $T \in U(a, b)$ (n, m) whose
every column $t_j$ has at most $k$ nonzeros,

$$
\min_{T \in U(a,b)}\ \langle C, T\rangle + \sum_j \Omega(t_j),\qquad
\Omega(t) = \tfrac{\gamma}{2}\lVert t\rVert^2 + \iota\{t \ge 0,\ \lVert t\rVert_0 \le k\}.
$$

The cardinality makes it nonconvex; the method maximizes the concave, smooth dual (exact for
the problem's convex relaxation, and a plan with at most $k$ nonzeros per column):

$$
D(\alpha, \beta) = \langle\alpha, a\rangle + \langle\beta, b\rangle - \sum_j
\Omega^*(\alpha + \beta_j\mathbf 1 - c_j),\qquad
\Omega^*(s) = \frac1{2\gamma}\sum_{i \in \mathrm{top}_k(s)} [s_i]_+^2,
$$

with $\nabla\Omega^*(s) = [s]_+/\gamma$ on the $k$ largest entries of $s$ (0 elsewhere). The plan
is $t_j = \nabla\Omega^*(\alpha + \beta_j - c_j)$ and the gradient of $D$ is the marginal
violation, $(a - T\mathbf 1,\ b - T^\top\mathbf 1)$. $k \ge n$: quadratically regularized OT.

Iterations: L-BFGS (memory ``memory``, two-loop recursion, initial scaling
$s^\top y / y^\top y$) on $-D$ with Armijo backtracking; a pair with $s^\top y \le 0$ is not
stored. The dual is concave but only piecewise quadratic: its gradient jumps where the top
$k$ of a column changes, so the method can slow down near such kinks (a line search that fails
along the L-BFGS direction is retried along the steepest one with the memory cleared). Each evaluation costs one pass over
the (n, m) matrix and a per-column ``argpartition``. Costs are divided by ``max|C|`` (and
``reg`` with them), so the iterates do not depend on the units of ``C``.

Stopping rule: the relative L1 marginal error of the plan,
$(\lVert T\mathbf 1 - a\rVert_1 + \lVert T^\top\mathbf 1 - b\rVert_1)/\sum a \le$ ``tol`` (the
L1 norm of the dual gradient), confirmed in float64 on the user's data.

Feasibility: $n$ rows need mass and the plan has at most $km$ nonzeros, so $km \ge n$ is
required (checked: ``ValueError``). When $km$ is barely above $n$ the dual optimum can sit on a
kink (tied top-$k$ sets) where no plan given by the dual gradient meets the marginals: the
run then ends ``max_iter`` with the marginal error it reached (POT's ``smooth_ot_dual``
returns such plans, 1e-2 to 1e-1 off the marginals, without a warning).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.sinkhorn import marginal_error, validate_ot, validate_reg

METHOD = "sparse_ot"
ARMIJO = 1e-4
LS_MAX = 50


def plan(alpha, beta, C, reg, k):
    """``T``: each column ``[alpha + beta_j - c_j]_+ / reg`` on its ``k`` largest entries."""
    X = alpha[:, None] + beta[None, :] - C
    n = X.shape[0]
    if k < n:
        drop = np.argpartition(X, n - k, axis=0)[:n - k]
        np.put_along_axis(X, drop, 0.0, axis=0)
    return np.maximum(X, 0.0) / reg


def _negative_dual(z, d):
    """``(-D(z), -grad D(z), T)`` on the scaled instance."""
    n = d.a.size
    alpha, beta = z[:n], z[n:]
    T = plan(alpha, beta, d.C, d.reg, d.k)
    value = alpha @ d.a + beta @ d.b - 0.5 * d.reg * np.sum(T * T)
    grad = np.concatenate([d.a - T.sum(axis=1), d.b - T.sum(axis=0)])
    return -value, -grad, T


class Data(NamedTuple):
    a: np.ndarray
    b: np.ndarray
    C: np.ndarray  # C / max|C|
    reg: float  # reg / max|C|
    k: int
    tol: float
    memory: int


class State(NamedTuple):
    z: np.ndarray  # (alpha, beta)
    F: float  # -D(z)
    grad: np.ndarray  # -grad D(z)
    T: np.ndarray
    S: list  # the last `memory` steps s and gradient changes y
    Y: list
    err: float  # relative L1 marginal error of T
    failed: bool  # the line search found no decrease


def _state(z, d: Data, S, Y, failed=False) -> State:
    F, grad, T = _negative_dual(z, d)
    return State(z, F, grad, T, S, Y, float(np.abs(grad).sum() / d.a.sum()), failed)


def _direction(s: State):
    """``-H grad`` by the two-loop recursion (steepest descent without memory)."""
    q = s.grad.copy()
    rhos = [1.0 / (y @ st) for st, y in zip(s.S, s.Y)]
    alphas = []
    for st, y, rho in zip(reversed(s.S), reversed(s.Y), reversed(rhos)):
        alpha = rho * (st @ q)
        alphas.append(alpha)
        q -= alpha * y
    if s.S:
        q *= (s.S[-1] @ s.Y[-1]) / (s.Y[-1] @ s.Y[-1])
    for st, y, rho, alpha in zip(s.S, s.Y, rhos, reversed(alphas)):
        q += (alpha - rho * (y @ q)) * st
    return -q


def _search(s: State, d: Data, direction, slope):
    """Armijo backtracking from ``s`` along ``direction``: the new state, or None."""
    t = 1.0
    for _ in range(LS_MAX):
        new = _state(s.z + t * direction, d, s.S, s.Y)
        if new.F <= s.F + ARMIJO * t * slope:
            return new
        t *= 0.5
    return None


def _step(bk, s: State, d: Data) -> State:
    direction = _direction(s)
    slope = s.grad @ direction
    new = _search(s, d, direction, slope) if slope < 0 else None
    if new is None:  # near a kink of the dual the memory can mislead: steepest descent
        s = s._replace(S=[], Y=[])
        new = _search(s, d, -s.grad, -(s.grad @ s.grad))
    if new is None:
        return s._replace(failed=True)
    step, change = new.z - s.z, new.grad - s.grad
    S, Y = list(s.S), list(s.Y)
    if step @ change > 1e-12 * np.linalg.norm(step) * np.linalg.norm(change):
        S, Y = (S + [step])[-d.memory:], (Y + [change])[-d.memory:]
    return new._replace(S=S, Y=Y)


def _monitor(bk, s: State, d: Data):
    return {"marginal_err": s.err, "dual_objective": -s.F}


def _converged(bk, s: State, d: Data):
    return s.err <= d.tol or s.failed


ALGORITHM = Algorithm(METHOD, _step, _monitor, _converged)


def sparse_ot(a, b, C, reg, max_nz, *, backend="numpy", tol=1e-9, max_iter=2000,
              time_limit=math.inf, verbose=False, progress=None, callback=None,
              check_every=None, seed=0, warm_start=None, dtype="float64",
              memory=10) -> Result:
    """Sparsity-constrained OT: at most ``max_nz`` nonzeros per column of the plan.

    Args:
        a: nonnegative weights (n,).
        b: nonnegative weights (m,), the same total as ``a``.
        C: cost matrix (n, m), finite.
        reg: the quadratic regularization ``gamma > 0`` (units of ``C`` per unit of mass).
        max_nz: ``k``, the most nonzeros of a column of the plan (``k * m >= n``; ``k >= n``:
            quadratically regularized OT).
        backend: ``"numpy"`` only.
        tol: stop when the relative L1 marginal error of the plan is at most ``tol``.
        max_iter: L-BFGS iterations.
        warm_start: a previous `Result` of this method or a pair of potentials
            ``(alpha, beta)``.
        memory: L-BFGS pairs kept.
        time_limit, verbose, progress, callback, check_every, seed, dtype: the common
            options (`cvxkit.solvers.driver.Options`; ``seed`` is unused, the method
            is deterministic; the iterations are float64).

    Returns:
        `Result` with ``x`` the plan (n, m), ``objective`` the primal value
        ``<C, T> + reg/2 ||T||^2`` of that plan, ``primal_residual`` its L1 marginal error,
        ``dual`` the potentials ``(alpha, beta)`` and ``info``: ``dual_objective``,
        ``transport_cost``, ``max_nz``, ``nonzeros_per_column`` (m,), ``reg``,
        ``relative_marginal_error``, ``line_search_failed``.
    """
    t_setup = time.perf_counter()
    a, b, C = validate_ot(a, b, C)
    reg = validate_reg(reg)
    k = validate.integer("max_nz", max_nz)
    memory = validate.integer("memory", memory)
    validate.choice("backend", backend, ("numpy",))
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    n, m = C.shape
    if k * m < n:
        raise ValueError(f"max_nz={k} is infeasible: a plan with at most {k} nonzeros in each "
                         f"of its {m} columns cannot give mass to all {n} rows (needs "
                         f"max_nz * m >= n)")
    scale = float(np.abs(C).max()) or 1.0
    d = Data(a, b, C / scale, reg / scale, min(k, n), float(opts.tol), memory)
    z0 = _warm(warm_start, n, m) / scale
    state = _state(z0, d, [], [])
    setup_time = time.perf_counter() - t_setup
    out = run(ALGORITHM, get_backend(backend), state, d, opts)
    s = out.state
    alpha, beta = scale * s.z[:n], scale * s.z[n:]
    T = plan(alpha, beta, C, reg, min(k, n))
    err = float(marginal_error(T, a, b))
    rel = err / float(a.sum())
    status, message = None, ""
    if out.status is Status.OPTIMAL and s.failed and not rel <= d.tol:
        status = Status.NUMERICAL_ERROR
        message = (f"the line search found no decrease of the dual at a relative marginal error "
                   f"{rel:.2e} > tol={d.tol:.1e}")
    elif out.status is Status.OPTIMAL and not rel <= d.tol:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the relative marginal error recomputed on the user's data is {rel:.2e} > "
                   f"tol={d.tol:.1e}")
    cost = float(np.vdot(C, T))
    final = Final(x=T, objective=cost + 0.5 * reg * float(np.sum(T * T)), dual=(alpha, beta),
                  primal_residual=err, status=status, message=message,
                  info={"dual_objective": -s.F * scale, "transport_cost": cost, "max_nz": k,
                        "nonzeros_per_column": (T > 0).sum(axis=0), "reg": reg,
                        "relative_marginal_error": rel, "line_search_failed": bool(s.failed)})
    return finish(final, method=METHOD, backend="numpy", run=out, setup_time=setup_time)


def _warm(warm_start, n, m) -> np.ndarray:
    """``(alpha, beta)`` stacked, from a `Result` of this method or a pair (zeros if None)."""
    if warm_start is None:
        return np.zeros(n + m)
    expected = (f"warm_start must be a Result of method '{METHOD}' or a pair (alpha, beta) of "
                f"shapes ({n},) and ({m},)")
    if isinstance(warm_start, Result):
        if warm_start.method != METHOD:
            raise ValueError(f"{expected}; got a Result of method {warm_start.method!r}")
        warm_start = warm_start.dual
    if not (isinstance(warm_start, (tuple, list)) and len(warm_start) == 2):
        raise ValueError(f"{expected}; got {type(warm_start).__name__}")
    try:
        alpha = validate.float_array("warm_start alpha", warm_start[0], ndim=1, finite=True)
        beta = validate.float_array("warm_start beta", warm_start[1], ndim=1, finite=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{expected}; {e}") from None
    if alpha.shape != (n,) or beta.shape != (m,):
        raise ValueError(f"{expected}; got shapes {alpha.shape} and {beta.shape}")
    return np.concatenate([alpha, beta])
