r"""Entropic Wasserstein barycenters on a fixed support by iterative Bregman projections.

Benamou, Carlier, Cuturi, Nenna & Peyré, "Iterative Bregman projections for regularized
transportation problems", SIAM J. Sci. Comput. 37(2), 2015; the log-domain form as in Peyré &
Cuturi, "Computational optimal transport", 2019, section 9.2.

Problem: histograms $a_1, \dots, a_K$ (the rows of ``A``, (K, m), equal masses $M$), weights
$w_k > 0$ with $\sum_k w_k = 1$, a cost $C$ (n, m) between the barycenter's support (n points)
and the measures' support (m points), and $\varepsilon$ = ``reg``:

$$
\min_{p \in \mathbb{R}^n_{\ge 0}}\ \sum_k w_k\, \mathrm{OT}_\varepsilon(p, a_k),\qquad
\mathrm{OT}_\varepsilon(p, a) = \min_{\pi \ge 0,\ \pi 1 = p,\ \pi^\top 1 = a}
\langle C, \pi\rangle + \varepsilon \sum_{ij} \pi_{ij}\log \pi_{ij}
$$

(the entropic OT of `cvxkit.solvers.sinkhorn`, POT's convention; POT's
``ot.bregman.barycenter(A.T, C, reg, weights)`` solves the same problem with $n = m$).

Iterations: the plans are $\pi_k = \exp((f_{k,i} + g_{k,j} - C_{ij})/\varepsilon)$. Each
iteration is one Bregman (KL) projection onto each constraint set, in the log domain so that no
$\varepsilon$ under- or overflows: with $L_{k,i} = \mathrm{LSE}_j((g_{k,j} - C_{ij})/\varepsilon)$,
the row marginals are $\log r_k = f_k/\varepsilon + L_k$, the barycenter is their weighted
geometric mean $\log p = \sum_k w_k \log r_k$, and

$$
f_k \leftarrow \varepsilon(\log p - L_k)\quad(\pi_k 1 = p),\qquad
g_{k} \leftarrow \varepsilon\log a_k - \varepsilon\,\mathrm{LSE}_i\big((f_{k,i} - C_{ij})/
\varepsilon\big)\quad(\pi_k^\top 1 = a_k).
$$

Two log-sum-exps over (K, n, m) per iteration. Costs are normalized as in Sinkhorn
(``C = scale * Cn + shift``, mass 1), so the iterates do not depend on the units.

Stopping rule: after the column projections every $\pi_k^\top 1 = a_k$ holds; the run stops when
the row marginals agree, $\max_k \lVert r_k - p\rVert_1 / M \le$ ``tol``. ``optimal`` is
confirmed in float64 on the user's data: the plans are rebuilt from the potentials and
$\max_k (\lVert \pi_k 1 - p\rVert_1 + \lVert \pi_k^\top 1 - a_k\rVert_1)/M \le$ ``tol``.
"""
from __future__ import annotations

import importlib
import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.implicit import is_traced
from cvxkit.solvers.result import Result, Status

# the module (the package attribute cvxkit.solvers.sinkhorn is the solver function)
sk = importlib.import_module("cvxkit.solvers.sinkhorn")

METHOD = "barycenter"


def validate_barycenter(A, C, weights):
    """``(A, C, w)`` as float64: ``A`` (K, m) nonnegative histograms with equal masses (up to
    1e-8 relative; each is then rescaled to the first one's mass), ``C`` (n, m) finite, ``w``
    (K,) positive weights normalized to sum 1 (default uniform); ``ValueError`` otherwise."""
    A = sk.finite_array("A", A, 2, nonempty=True)
    K, m = A.shape
    rows = [sk.validate_marginals(A[0], A[k])[1] for k in range(K)]
    A = np.stack(rows)
    C = validate.matrix("C", C, finite=True, sparse=False)
    if C.ndim != 2 or C.shape[1] != m or C.shape[0] < 1:
        raise ValueError(f"C must have shape (n, {m}) (the measures have {m} entries), got "
                         f"{C.shape}")
    if weights is None:
        w = np.full(K, 1.0 / K)
    else:
        w = sk.finite_array("weights", weights, 1)
        if w.shape != (K,):
            raise ValueError(f"weights must have shape ({K},) (one per measure), got {w.shape}")
        if not (w > 0).all():
            raise ValueError(f"weights must be positive (drop a measure of weight 0), got {w}")
        w = w / w.sum()
    return A, C, w


class Data(NamedTuple):
    C: object  # (n, m), normalized costs
    log_A: object  # (K, m)
    w: object  # (K,)
    eps: object
    tol: object


class State(NamedTuple):
    f: object  # (K, n)
    g: object  # (K, m)
    L: object  # (K, n): LSE_j((g - C) / eps), the rows' log-sums
    log_p: object  # (n,): the barycenter of the current plans
    err: object  # max_k ||r_k - p||_1 (mass 1)


def _lse(bk: Backend, M, axis):
    return bk.logsumexp(M, axis=axis)


def _fit_columns(bk: Backend, f, d: Data) -> State:
    """Project onto the column constraints, then the rows' log-sums, barycenter and error."""
    xp, eps = bk.xp, d.eps
    g = eps * d.log_A - eps * _lse(bk, (f[:, :, None] - d.C[None]) / eps, axis=1)
    L = _lse(bk, (g[:, None, :] - d.C[None]) / eps, axis=2)
    log_r = f / eps + L
    log_p = xp.sum(d.w[:, None] * log_r, axis=0)
    err = xp.max(xp.sum(xp.abs(xp.exp(log_r) - xp.exp(log_p)[None, :]), axis=1))
    return State(f, g, L, log_p, err)


def _step(bk: Backend, s: State, d: Data) -> State:
    return _fit_columns(bk, d.eps * (s.log_p[None, :] - s.L), d)


def _monitor(bk, s: State, d: Data):
    return {"marginal_err": s.err}


def _converged(bk, s: State, d: Data):
    return s.err <= d.tol


ALGORITHM = Algorithm(METHOD, _step, _monitor, _converged)


def _warm(warm_start, shapes, scale, shift, reg, mass):
    """Normalized row potentials ``f`` (K, n) from a barycenter `Result` or an array."""
    if warm_start is None:
        return None
    expected = (f"warm_start must be a Result of method '{METHOD}' or the row potentials f of "
                f"shape {shapes}")
    if isinstance(warm_start, Result):
        info = warm_start.info if isinstance(warm_start.info, dict) else {}
        if warm_start.method != METHOD or "f" not in info:
            raise ValueError(f"{expected}; got a Result of method {warm_start.method!r}")
        warm_start = info["f"]
    try:
        f = sk.finite_array("warm_start", warm_start, 2)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{expected}; {e}") from None
    if f.shape != shapes:
        raise ValueError(f"{expected}; got shape {f.shape}")
    return (f - shift - reg * math.log(mass)) / scale


def barycenter(A, C, reg, *, weights=None, backend="numpy", tol=1e-9, max_iter=100_000,
               time_limit=math.inf, verbose=False, progress=None, callback=None,
               check_every=None, seed=0, warm_start=None, dtype="float64") -> Result:
    """Entropic Wasserstein barycenter of the rows of ``A`` on a fixed support.

    Args:
        A: histograms (K, m), one per row, nonnegative, with equal masses.
        C: cost matrix (n, m) between the barycenter's n support points and the measures' m
            (for POT's ``ot.bregman.barycenter(A.T, M, reg)``: ``C = M``, n = m).
        reg: entropic regularization ``> 0``, in units of ``C``.
        weights: (K,) positive weights (normalized to sum 1; default uniform).
        backend: ``"numpy"`` or ``"jax"``.
        tol: stop when ``max_k ||pi_k 1 - p||_1 / M <= tol`` (the columns are exact after each
            iteration); ``optimal`` is confirmed in float64 on the user's data.
        max_iter: iterations (one projection onto every constraint set each).
        warm_start: a previous `Result` of this method or its row potentials ``f`` (K, n).
        time_limit, verbose, progress, callback, check_every, seed, dtype: the common
            options (`cvxkit.solvers.driver.Options`; ``seed`` is unused, the method
            is deterministic).

    Returns:
        `Result` with ``x`` the barycenter ``p`` (n,), ``objective``
        ``sum_k w_k (<C, pi_k> + reg sum pi_k log pi_k)``, ``primal_residual`` the largest
        L1 marginal error of a plan (``||pi_k 1 - p||_1 + ||pi_k^T 1 - a_k||_1``), ``dual``
        the potentials ``(f, g)`` of shapes (K, n) and (K, m) with
        ``pi_k = exp((f_k + g_k - C) / reg)``, and ``info``: ``plans`` (K, n, m),
        ``transport_costs`` (K,), ``weights``, ``f``, ``g``, ``reg``,
        ``relative_marginal_error``.
    """
    t_setup = time.perf_counter()
    if is_traced(A, C):
        raise ValueError(f"{METHOD} cannot run inside jax.jit, vmap or grad")
    A, C, w = validate_barycenter(A, C, weights)
    reg = sk.validate_reg(reg)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    mass = float(A[0].sum())
    Cn, shift, scale = sk.normalize_cost(C, fallback=reg)
    eps = reg / scale
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"reg={reg!r} relative to the cost spread {scale:.3g} is not "
                         f"representable in float64")
    K, n = A.shape[0], C.shape[0]
    f0 = _warm(warm_start, (K, n), scale, shift, reg, mass)
    bk = get_backend(backend, dtype)
    with bk.precision(), np.errstate(divide="ignore"):
        d = Data(bk.asarray(Cn), bk.asarray(np.log(A / mass)), bk.asarray(w), bk.asarray(eps),
                 bk.asarray(float(opts.tol)))
        f0 = bk.xp.zeros((K, n), dtype=d.C.dtype) if f0 is None else bk.asarray(f0)
        state = bk.jit(_fit_columns, static_argnums=(0,))(bk, f0, d)
        setup_time = time.perf_counter() - t_setup
        out = run(ALGORITHM, bk, state, d, opts)
        s = out.state
        f, g = bk.to_numpy(s.f), bk.to_numpy(s.g)
    f = scale * np.asarray(f, dtype=np.float64) + shift + reg * math.log(mass)
    g = scale * np.asarray(g, dtype=np.float64)
    final = _final(A, C, w, reg, f, g, float(opts.tol), dtype, out.status)
    return finish(final, method=METHOD, backend=bk.name, run=out, setup_time=setup_time)


def _final(A, C, w, reg, f, g, tol, dtype, loop: Status) -> Final:
    """Plans, barycenter and objective from the potentials, on the user's data in float64."""
    mass = float(A[0].sum())
    with np.errstate(all="ignore"):
        plans = np.exp((f[:, :, None] + g[:, None, :] - C[None]) / reg)
        rows = plans.sum(axis=2)
        p = np.exp(np.sum(w[:, None] * np.log(rows), axis=0))
        costs = np.einsum("knm,nm->k", plans, C)
        ent = np.sum(plans * np.log(np.where(plans > 0, plans, 1.0)), axis=(1, 2))
    errs = (np.abs(rows - p[None]).sum(axis=1) + np.abs(plans.sum(axis=1) - A).sum(axis=1))
    err = float(errs.max())
    status, message = None, ""
    if not (np.isfinite(plans).all() and np.isfinite(p).all()):
        status, message = Status.NUMERICAL_ERROR, "the plans have non-finite entries"
    elif loop is Status.OPTIMAL and not err / mass <= tol:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the relative marginal error recomputed in float64 on the user's data is "
                   f"{err / mass:.2e} > tol={tol:.1e} (the {dtype} iterations cannot reach "
                   f"this tol)")
    return Final(x=p, objective=float(np.dot(w, costs + reg * ent)), dual=(f, g),
                 primal_residual=err, status=status, message=message,
                 info={"plans": plans, "transport_costs": costs, "weights": w, "f": f, "g": g,
                       "reg": reg, "relative_marginal_error": err / mass})
