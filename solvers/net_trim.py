r"""Net-Trim: layer-wise convex pruning of a trained ReLU network, on the prox-ADMM core.

Aghasi, Abdi, Nguyen & Romberg, "Net-Trim: convex pruning of deep neural networks with
performance guarantee", NeurIPS 2017; Aghasi, Abdi & Romberg, "Fast convex pruning of deep
neural networks", SIAM J. Math. Data Sci. 2020 (arXiv 1806.06457).

One layer: input $X \in \mathbb{R}^{N\times P}$ (features x samples; a row of ones for a bias),
response $Y \in \mathbb{R}^{M\times P}$ (the trained layer's $\mathrm{ReLU}(W_0^\top X)$), support
$\Omega = \{Y > 0\}$ (``mask``), bound $V$ off the support ($0$ in the parallel scheme):

$$
\min_{W \in \mathbb{R}^{N\times M}} \lVert W\rVert_1 \quad\text{s.t.}\quad
\lVert (W^\top X - Y)_\Omega\rVert_F \le \epsilon,\qquad (W^\top X)_{\Omega^c} \le V_{\Omega^c}.
$$

``V=None`` is a linear layer (no ReLU): $\lVert W^\top X - Y\rVert_F \le \epsilon$ only.

**On the core** (`cvxkit.solvers.relu_admm`): $x = W$, $g_1 = \lVert\cdot\rVert_1$ on
$A_1 = I$ (kind ``l1``) and $g_2$ the indicator of the set above on $A_2W = W^\top X$ (kind
``net_trim``, `cvxkit.solvers.relu_admm.prox`), so the $W$-step solves
$\rho(I + XX^\top)W = R$ for all $M$ columns with one $N\times N$ Cholesky factor per penalty
($O(N^2P + N^3)$ once, $O(NMP + N^2M)$ per iteration).

**Normalization** (``normalize=True``). The rows of $X$ are scaled to equal norms,
$\tilde X = DX$ (a bias row of ones beside features of size 100 otherwise slows the ADMM by
orders of magnitude); then, as in the paper's code, $\tilde X$ is divided by
$c_0 = 0.3\sqrt{\max_{ij}(\tilde X\tilde X^\top)_{ij}}$, and $Y$, $V$, $\epsilon$ by
$\max|Y|$. The program is unchanged: its weights are $U = c_0D^{-1}W/\max|Y|$ and its
objective the weighted $\sum_{ij} d_i|U_{ij}|$ ($\propto\lVert W\rVert_1$), so the run is the
same for every scaling of $X$ and of $Y$. The initial penalty is the inverse mean magnitude of
the ridge weights $(I + \tilde X\tilde X^\top)^{-1}\tilde XY^\top$ (normalized). Measured
over Test D, four random and two digits layers at ``tol=1e-6``: 14,750 iterations with the
paper's normalization and $\rho = 1$, 5,720 with this penalty, 3,830 with the row scaling
too. The core's adaptive penalty and Boyd stopping rule (absolute tolerance ``tol``,
i.e. ``tol * max|Y|``) follow. The answer is the $\ell_1$ copy $z_1$ (soft-thresholded:
exactly sparse).

**Final check on the user's data.** With $Z = W^\top X$ for the returned $W$ (float64):
``primal_residual`` $= \max\big((\lVert(Z - Y)_\Omega\rVert_F - \epsilon)_+,\
\max_{\Omega^c}(Z - V)_+\big)$ in the units of $Y$; the result is ``optimal`` only when the
loop met its test and this is at most ``eps_abs + eps_rel * ||Y||_F`` (defaults
``eps_abs = tol * max|Y|``, ``eps_rel = tol``). When the loop's test holds and this one does
not, the run goes on from its state with 10x tighter ADMM tolerances (at most `REFINE` times,
within ``max_iter`` and ``time_limit``); still failing, the status is ``optimal_inaccurate``.
``dual`` holds the multipliers of $W = z_1$ and of $W^\top X = z_2$ in the user's units.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import kkt, validate
from cvxkit.solvers.relu_admm import Operator, ProxProgram, relu_admm
from cvxkit.solvers.result import Result, Status

#: the paper code's normalization: X is divided by C0 * sqrt(max(X X^T))
C0 = 0.3
#: at most this many continuations (10x tighter ADMM tolerances) when the ADMM's test holds and
#: the violation test on the user's data does not
REFINE = 3


class NetTrimLin(NamedTuple):
    """Operator data: ``X`` (N, P) normalized, ``G = I + X X^T`` (N, N), ``zero`` (N, M)."""

    X: Any
    G: Any
    zero: Any


def _forward(bk, lin, W):
    return W, W.T @ lin.X


def _adjoint(bk, lin, z):
    return z[0] + lin.X @ z[1].T


def _factorize(bk, lin, rho):
    return kkt.cholesky(bk, rho * lin.G)


def _solve(bk, lin, L, rhs, rho):
    return kkt.cho_solve(bk, L, rhs)


NET_TRIM = Operator(_forward, _adjoint, _factorize, _solve,
                    lambda bk, lin, W: 0.0 * W[0, 0], lambda bk, lin: lin.zero)
"""The `Operator` of Net-Trim: $W \\mapsto (W, W^\\top X)$, $\\rho(I + XX^\\top)$ by Cholesky."""


def check_layer(X, Y, V, eps, mask):
    """``X`` (N, P), ``Y`` (M, P), ``V`` (M, P) or None, ``eps >= 0``, ``mask`` (M, P) booleans
    (default ``Y > 0``; all True when ``V`` is None) as float64 arrays, else ``ValueError``
    naming the argument."""
    X = validate.matrix("X (N features, P samples)", X, nonempty=True, sparse=False)
    if X.ndim != 2:
        raise ValueError(f"X (N features, P samples) must be a 2-D array, got shape {X.shape}")
    P = X.shape[1]
    Y = validate.float_array("Y (M outputs, P samples)", Y, ndim=2, nonempty=True, finite=True)
    if Y.shape[1] != P:
        raise ValueError(f"Y must have shape (M, {P}) (one column per sample of X), got {Y.shape}")
    eps = validate.nonnegative("eps", eps)
    if V is None:
        if mask is not None:
            raise ValueError("mask applies to a ReLU layer (V given); a linear layer (V=None) "
                             "fits every entry")
        return X, Y, None, eps, np.ones(Y.shape, dtype=bool)
    V = validate.float_array("V", V, ndim=2, finite=True)
    if V.shape != Y.shape:
        raise ValueError(f"V must have the shape of Y {Y.shape}, got {V.shape}")
    if mask is None:
        mask = Y > 0
    else:
        m = np.asarray(mask)
        if m.shape != Y.shape or not (m.dtype == bool or np.isin(m, (0, 1)).all()):
            raise ValueError(f"mask must be a boolean (M, P) array of the shape of Y {Y.shape}")
        mask = m.astype(bool)
    return X, Y, V, eps, mask


def violations(W, X, Y, V, eps, mask) -> tuple[float, float]:
    """``(fit, off)``: $(\\lVert(W^\\top X - Y)_\\Omega\\rVert_F - \\epsilon)_+$ and
    $\\max_{\\Omega^c}(W^\\top X - V)_+$ (0 without ``V``), float64, in the units of ``Y``."""
    Z = np.asarray(W, dtype=np.float64).T @ X
    fit = max(float(np.linalg.norm((Z - Y)[mask])) - eps, 0.0)
    off = 0.0 if V is None or mask.all() else float(np.max(np.maximum((Z - V)[~mask], 0.0)))
    return fit, off


def net_trim_program(X, Y, V, eps, mask=None, normalize: bool = True) -> ProxProgram:
    """The `ProxProgram` of one layer (module docstring); arguments as `net_trim`. Its answer
    is ``W`` (N, M); ``info["c0"]`` is the normalization constant."""
    validate.boolean("normalize", normalize)
    return _program(*check_layer(X, Y, V, eps, mask), normalize)


def _program(X, Y, V, eps, mask, normalize) -> ProxProgram:
    N, M = X.shape[0], Y.shape[0]
    d = np.ones(N)
    if normalize:  # rows of X to equal norms (a bias row of ones beside features of 1e2)
        rn = np.linalg.norm(X, axis=1)
        if (rn > 0).any():
            d = np.where(rn > 0, np.sqrt(np.mean(rn[rn > 0] ** 2)) / np.where(rn > 0, rn, 1), 1)
    Xd = d[:, None] * X
    c0 = C0 * math.sqrt(float(np.max(Xd @ Xd.T))) if normalize else 1.0
    c0 = c0 if c0 > 0 else 1.0
    ys = float(np.max(np.abs(Y))) if normalize else 1.0
    ys = ys if ys > 0 else 1.0
    Xn, Yn = Xd / c0, Y / ys
    Vn = np.zeros_like(Y) if V is None else V / ys
    scale = (ys / c0) * d[:, None]  # W = scale * U for the weights U of the normalized program
    G = np.eye(N) + Xn @ Xn.T

    def build(b):
        with b.precision():
            f = b.asarray
            lin = NetTrimLin(f(Xn), f(G), f(np.zeros((N, M))))
            return lin, (f(d[:, None]), (f(Yn), f(mask.astype(np.float64)), f(Vn), f(eps / ys)))

    # initial penalty: the inverse mean magnitude of the ridge weights (I + X X^T)^{-1} X Y^T
    # (the scale of the answer; measured: 2.6x fewer iterations than the paper's rho = 1)
    ridge = float(np.mean(np.abs(np.linalg.solve(G, Xn @ Yn.T))))
    unit = float(np.max(np.abs(Yn)))
    return ProxProgram(NET_TRIM, ("l1", "net_trim"), build, 0, (N, M), lambda W: W / scale,
                       lambda U: float(np.sum(np.abs(scale * U))), unit if unit > 0 else 1.0,
                       {"c0": c0, "y_scale": ys, "row_scale": d, "weight_scale": scale,
                        "rho0": 1.0 / ridge if ridge > 0 else 1.0}, "net_trim")


def _merge(a: Result, b: Result) -> Result:
    """``b``, a run warm-started from ``a``, with the iterations, times and history of both."""
    hist = {k: np.concatenate([a.history[k], b.history[k] + (
        a.iterations if k == "iteration" else a.solve_time if k == "time" else 0)])
        for k in b.history if k in a.history}
    return dataclasses.replace(b, iterations=a.iterations + b.iterations, history=hist,
                               solve_time=a.solve_time + b.solve_time, setup_time=a.setup_time,
                               compile_time=a.compile_time + b.compile_time)


def net_trim(X, Y, V, eps, mask=None, *, backend="numpy", tol=1e-6, eps_abs=None, eps_rel=None,
             max_iter=20_000, time_limit=math.inf, verbose=False, progress=None, callback=None,
             check_every=10, rho=None, gamma=1.0, alpha=1.6, adaptive_rho=True,
             adaptive_rho_tolerance=5.0, dtype="float64", warm_start=None, seed=0,
             normalize=True) -> Result:
    r"""Prune one layer by Net-Trim (module docstring).

    Args:
        X: layer input (N, P): features x samples (append a row of ones for a bias).
        Y: response to keep (M, P), e.g. $\mathrm{ReLU}(W_0^\top X)$.
        V: bound off the support (M, P) (zeros: the parallel scheme), or None for a linear
            layer (every entry fitted, no inequality).
        eps: the misfit allowed, $\lVert(W^\top X - Y)_\Omega\rVert_F \le$ ``eps`` (units of Y).
        mask: the support $\Omega$ (M, P) booleans; default ``Y > 0`` (all entries for V=None).
        tol: the ADMM's relative tolerance and, times ``max|Y|``, its absolute one; the final
            check (module docstring) uses the same ``eps_abs`` and ``eps_rel``.
        eps_abs: absolute tolerance in the units of Y (default ``tol * max|Y|``).
        eps_rel: relative tolerance (default ``tol``).
        rho: initial penalty on the normalized data (default: the inverse mean magnitude of
            the normalized ridge weights, module docstring).
        gamma: dual step over rho, in (0, 1.618).
        alpha: over-relaxation in (0, 2).
        adaptive_rho: move the penalty by OSQP's residual-balancing estimate.
        adaptive_rho_tolerance: the factor by which the estimate must differ to move rho.
        normalize: equilibrate the rows of X, divide it by $c_0$ and Y, V, eps by
            $\max|Y|$ (module docstring); False: the ADMM on the raw data.
        warm_start: a `Result` of `net_trim` on a layer of the same shapes, or weights (N, M).
        seed: no effect (deterministic); accepted as every method's option.
        backend: "numpy" or "jax".
        max_iter: iteration limit (all refinements together).
        time_limit: seconds (all refinements together).
        verbose: print the ADMM table.
        progress: progress bar (None: automatic).
        callback: called at every check with the monitored values; True stops.
        check_every: iterations between checks of the stopping test.
        dtype: "float64" or "float32" (rechecked in float64).

    Returns:
        `Result`: ``x`` the pruned weights W (N, M), ``objective`` $\lVert W\rVert_1$,
        ``primal_residual`` the constraint violation on the user's data (module docstring),
        ``dual_residual`` the ADMM's (normalized program), ``dual`` the multipliers of
        $W = z_1$ (N, M) and $W^\top X = z_2$ (M, P); ``info``: ``misfit``
        $\lVert(W^\top X - Y)_\Omega\rVert_F$, ``eps``, ``fit_violation``, ``off_violation``,
        ``tolerance``, ``refinements``, ``admm_primal_residual``, ``c0``, ``y_scale``,
        ``row_scale``, ``weight_scale`` ($W = $ ``weight_scale`` $\cdot U$), ``rho0``,
        ``nonzeros`` and the core's entries (``rho``, ``state`` for warm starts, ...);
        ``history`` the ADMM's checks (``objective`` in the user's units).
    """
    X, Y, V, eps, mask = check_layer(X, Y, V, eps, mask)
    validate.boolean("normalize", normalize)
    program = _program(X, Y, V, eps, mask, normalize)
    tol = validate.positive("tol", tol)
    validate.nonnegative("eps_abs", eps_abs, allow_none=True)
    validate.nonnegative("eps_rel", eps_rel, allow_none=True)
    c0, ys = program.info["c0"], program.info["y_scale"]
    w = program.info["weight_scale"]  # W = w U, U the normalized program's weights
    e_abs = tol * program.unit if eps_abs is None else eps_abs / ys  # normalized units
    e_rel = tol if eps_rel is None else eps_rel
    tau = e_abs * ys + e_rel * float(np.linalg.norm(Y))  # the final check, units of Y
    opts = dict(backend=backend, tol=tol, verbose=verbose, progress=progress, callback=callback,
                check_every=check_every, rho=program.info["rho0"] if rho is None else rho,
                gamma=gamma, alpha=alpha, adaptive_rho=adaptive_rho,
                adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype, seed=seed)
    res = relu_admm(program, eps_abs=e_abs, eps_rel=e_rel, max_iter=max_iter,
                    time_limit=time_limit, warm_start=warm_start, **opts)
    fit, off = violations(w * res.x, X, Y, V, eps, mask)
    refinements = 0
    while (res.status is Status.OPTIMAL and not max(fit, off) <= tau
           and refinements < REFINE and res.iterations < max_iter
           and res.solve_time + res.setup_time < time_limit):
        # the ADMM's test held, the user's did not: go on from the state, 10x tighter
        refinements += 1
        e_abs, e_rel = e_abs / 10, e_rel / 10
        res = _merge(res, relu_admm(
            program, eps_abs=e_abs, eps_rel=e_rel, max_iter=max_iter - res.iterations,
            time_limit=time_limit - res.solve_time - res.setup_time, warm_start=res, **opts))
        fit, off = violations(w * res.x, X, Y, V, eps, mask)
    viol = max(fit, off)
    status, message = res.status, res.message
    if refinements and status is not Status.OPTIMAL:
        status = Status.OPTIMAL_INACCURATE
        message = f"refining the answer (the ADMM's test held, the violation test did not): " \
            f"{message}"
    if status is Status.OPTIMAL and not viol <= tau:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the ADMM met its stopping test, but the returned weights violate the "
                   f"constraints on the user's data by {viol:.2e} > {tau:.2e} (misfit excess "
                   f"{fit:.2e}, off-support {off:.2e})")
    W = w * np.asarray(res.x, dtype=np.float64)
    d1, d2 = res.dual  # normalized: W = w U, W^T X = ys U^T Xn (multipliers module docstring)
    info = {**res.info, "misfit": float(np.linalg.norm((W.T @ X - Y)[mask])), "eps": eps,
            "fit_violation": fit, "off_violation": off, "tolerance": tau,
            "admm_primal_residual": res.primal_residual, "refinements": refinements,
            "nonzeros": int(np.count_nonzero(W))}
    hist = dict(res.history)
    if "objective" in hist:
        hist["objective"] = ys / c0 * np.asarray(hist["objective"])
    dual = (np.asarray(d1) / program.info["row_scale"][:, None], np.asarray(d2) / c0)
    return dataclasses.replace(res, x=W, status=status, message=message, primal_residual=viol,
                               dual=dual, info=info, history=hist)
