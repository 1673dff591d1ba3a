r"""Unbalanced entropic optimal transport (KL-relaxed marginals) on the stabilized Sinkhorn loop.

Problem (POT's ``ot.unbalanced.sinkhorn_unbalanced(a, b, C, reg, reg_m, reg_type="kl")``), with
$\varepsilon$ = ``reg`` and $(\lambda_a, \lambda_b)$ = ``reg_m``:

$$
\min_{P \ge 0}\ \langle C, P\rangle + \varepsilon\,\mathrm{KL}(P \,\|\, a b^\top)
+ \lambda_a \mathrm{KL}(P\mathbf 1 \,\|\, a) + \lambda_b \mathrm{KL}(P^\top \mathbf 1 \,\|\, b),
\qquad \mathrm{KL}(p\,\|\,q) = \sum_k p_k \log(p_k/q_k) - p_k + q_k .
$$

The entropy term is the KL divergence to the product measure $a b^\top$ (POT's default
``reg_type="kl"`` since POT 0.9.5), not the $\sum P\log P$ of cvxkit's balanced Sinkhorn. All
three divergences are the *generalized* KL (with the mass terms $-p + q$): the problem above is
the one whose minimizer POT's iterations compute, and its value is ``Result.objective``. (POT's
``log["total_cost"]`` omits the mass terms $\sum q - \sum p$ of each divergence, so it differs
from ``Result.objective`` by $\varepsilon(\sum a \sum b - m) + \lambda_a(\sum a - m) + \lambda_b
(\sum b - m)$, $m = \sum P$.) $\lambda = \infty$ on a side makes that marginal a constraint
(with both infinite the plan is the balanced Sinkhorn plan: ``KL(P || a b^T)`` and
$\sum P \log P$ differ by a constant on $U(a, b)$).

Dual potentials $f$, $g$ give the plan $P_{ij} = a_i b_j \exp((f_i + g_j - C_{ij})/\varepsilon)$;
at the optimum $P\mathbf 1 = a\,e^{-f/\lambda_a}$, $P^\top\mathbf 1 = b\,e^{-g/\lambda_b}$. The
scaling algorithm of Chizat, Peyré, Schmitzer & Vialard ("Scaling algorithms for unbalanced
optimal transport problems", Math. Comp. 87, 2018), in the log domain, with
$\tau_a = \lambda_a/(\lambda_a + \varepsilon)$, $\tau_b = \lambda_b/(\lambda_b + \varepsilon)$
($\tau = 1$ for $\lambda = \infty$: balanced Sinkhorn):

$$
f_i \leftarrow -\tau_a\,\varepsilon \log \sum_j b_j e^{(g_j - C_{ij})/\varepsilon},\qquad
g_j \leftarrow -\tau_b\,\varepsilon \log \sum_i a_i e^{(f_i - C_{ij})/\varepsilon},
$$

that is ``tau`` times the balanced log-domain update for the reference $a b^\top$ (the
$\varepsilon\log a_i$ of the balanced update cancels against the reference). In the kernel
domain, on the stabilized kernel $K = a b^\top e^{(\tilde f + \tilde g - C)/\varepsilon}$ of
`cvxkit.solvers.sinkhorn`, this is $u = (a / K v)^{\tau_a} e^{-\tilde f/(\lambda_a+\varepsilon)}$
(and the same for $v$), computed through its logarithm; absorption, the log-domain iteration
and epsilon scaling are those of the balanced loop (`cvxkit.solvers.sinkhorn.accept`).

Stopping rule: the marginals are not constraints, so the loop stops on the **fixed-point
residual** of the potentials: the largest change the next update would make to a potential,
in units of $\varepsilon$,

$$
\max\Big(\max_i \big|\tau_a\big(\log\tfrac{a_i}{(P\mathbf 1)_i} - \tfrac{f_i}{\lambda_a}\big)\big|,\
\max_j \big|\tau_b\big(\log\tfrac{b_j}{(P^\top\mathbf 1)_j} - \tfrac{g_j}{\lambda_b}\big)\big|\Big)
\ \le\ \mathtt{tol}
$$

(the largest relative change of a row or column of the plan; with $\lambda = \infty$ it is the
largest relative marginal error $|\log(a_i/(P\mathbf 1)_i)|$). It is dimensionless: scaling
$C$, ``reg`` and ``reg_m`` together changes neither the iterates nor the status. ``optimal``
is confirmed by recomputing it in float64 from the returned plan and potentials.

Normalization: an unbalanced plan changes when a constant is added to $C$ (the term
$c\sum P$ does not vanish, the mass is free) and when $a$, $b$ are scaled by $s$ (the
reference $a b^\top$ scales by $s^2$: the same as a cost shift of $-\varepsilon\log s$), so
neither is normalized away. The iterations run on $C/s$, $\varepsilon/s$, $\lambda/s$ with
$s = \max|C|$ and the user's masses; the potentials are mapped back by $f = s f_n$.
"""
from __future__ import annotations

import math

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend
from cvxkit.solvers.driver import Algorithm, Final
from cvxkit.solvers.result import Status
from cvxkit.solvers.sinkhorn import Data, State, _converged, accept


def validate_reg_m(reg_m) -> tuple[float, float]:
    """``reg_m`` as a pair ``(lam_a, lam_b)``: a positive number (both sides) or a pair of
    them, each in ``(0, inf]``; ``ValueError`` (``TypeError`` too for a non-number) otherwise."""
    if isinstance(reg_m, (tuple, list)) or np.ndim(reg_m) > 0:
        if len(reg_m) != 2:
            raise ValueError(f"reg_m must be a positive number or a pair (reg_m_a, reg_m_b), got "
                             f"a sequence of length {len(reg_m)}")
        pair = reg_m
    else:
        pair = (reg_m, reg_m)
    return tuple(validate.positive(f"reg_m[{i}]" if pair is reg_m else "reg_m", lam, allow_inf=True)
                 for i, lam in enumerate(pair))


def exact(reg_m) -> bool:
    """Both marginals are constraints (``reg_m = (inf, inf)``): the masses must agree."""
    return math.isinf(reg_m[0]) and math.isinf(reg_m[1])


def normalized_rho(reg_m, nz) -> tuple[float, float]:
    """``(1/lam_a, 1/lam_b)`` on the normalized instance ``nz`` (costs divided by ``nz.scale``;
    0 for an exact side); ``ValueError`` if a ratio is not representable in float64."""
    out = []
    for lam in reg_m:
        rho = nz.scale / lam
        if not (math.isfinite(rho) and math.isfinite(rho * max(nz.reg, 2.0))):
            raise ValueError(f"reg_m={lam!r} relative to max|C| = {nz.scale:.3g} is not "
                             f"representable in float64")
        out.append(rho)
    return tuple(out)


# --------------------------------------------------------------------------------------
# the loop (normalized instance, any back end)
# --------------------------------------------------------------------------------------
def _taus(eps, d: Data):
    """``lam / (lam + eps)`` for both sides, as ``1 / (1 + eps * rho)`` (1 for an exact side)."""
    return 1.0 / (1.0 + eps * d.rho_a), 1.0 / (1.0 + eps * d.rho_b)


def _next_log_scaling(xp, log_h, ksum, pot, tau, rho):
    """``log`` of the next scaling of one side: ``tau * (log h - log(K v) - rho * pot)``."""
    return tau * (log_h - xp.log(ksum) - rho * pot)


def _log_iteration(bk: Backend, f, g, eps, d: Data):
    """One exact log-domain iteration (rows, then columns) at ``eps`` (module docstring)."""
    ta, tb = _taus(eps, d)
    f = -ta * eps * bk.logsumexp((g[None, :] - d.C) / eps + d.log_b[None, :], axis=1)
    g = -tb * eps * bk.logsumexp((f[:, None] - d.C) / eps + d.log_a[:, None], axis=0)
    return f, g


def rebuild(bk: Backend, f, g, eps, d: Data, log_step=True) -> State:
    """A fresh stabilized kernel ``a b^T exp((f + g - C)/eps)`` with unit scalings, after a
    log-domain iteration if ``log_step``; the error is the residual of both sides."""
    xp = bk.xp
    f, g = bk.cond(log_step, lambda f, g: _log_iteration(bk, f, g, eps, d),
                   lambda f, g: (f, g), f, g)
    K = xp.exp((f[:, None] + g[None, :] - d.C) / eps + d.log_a[:, None] + d.log_b[None, :])
    Kv = xp.sum(K, axis=1)
    ta, tb = _taus(eps, d)
    err = xp.maximum(xp.max(xp.abs(_next_log_scaling(xp, d.log_a, Kv, f, ta, d.rho_a))),
                     xp.max(xp.abs(_next_log_scaling(xp, d.log_b, xp.sum(K, axis=0), g, tb,
                                                     d.rho_b))))
    # an underflowed kernel sum gives inf: finite for the monitor, the next step absorbs
    err = xp.minimum(err, d.big)
    return State(f, g, xp.ones_like(f), xp.ones_like(g), K, Kv, err, eps)


def _step(bk: Backend, s: State, d: Data) -> State:
    xp = bk.xp
    ta, tb = _taus(s.eps, d)
    log_u = _next_log_scaling(xp, d.log_a, s.Kv, s.f, ta, d.rho_a)
    u = xp.exp(log_u)
    v = xp.exp(_next_log_scaling(xp, d.log_b, u @ s.K, s.g, tb, d.rho_b))
    Kv = s.K @ v
    # columns are at their fixed point: the residual is the change the next row update makes
    err = xp.max(xp.abs(_next_log_scaling(xp, d.log_a, Kv, s.f, ta, d.rho_a) - log_u))
    return accept(bk, s, d, u, v, Kv, err, rebuild)


def _monitor(bk, s: State, d: Data):
    return {"fixed_point_res": s.err, "eps": s.eps}


ALGORITHM = Algorithm("sinkhorn", _step, _monitor, _converged)


# --------------------------------------------------------------------------------------
# the user's units, float64
# --------------------------------------------------------------------------------------
def kl_div(p, q) -> float:
    r"""Generalized KL divergence $\sum p\log(p/q) - p + q$ ($0\log 0 = 0$; $+\infty$ where
    $q = 0 < p$)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    with np.errstate(all="ignore"):
        t = np.where(p > 0, p * np.log(p / q), 0.0)
    return float(np.sum(t - p + q))


def objective(P, a, b, C, reg, reg_m) -> tuple[float, float]:
    """``(objective, <C, P>)`` of the plan ``P`` (negative entries clipped to 0); an exact
    side (``inf``) contributes no term (its marginal is a constraint, see `final`)."""
    P = np.maximum(np.asarray(P, dtype=np.float64), 0.0)
    cost = float(np.vdot(C, P))
    total = cost + reg * kl_div(P, np.outer(a, b))
    for lam, marginal, h in ((reg_m[0], P.sum(axis=1), a), (reg_m[1], P.sum(axis=0), b)):
        if math.isfinite(lam):
            total += lam * kl_div(marginal, h)
    return total, cost


def _sides(P, f, g, a, b, reg_m):
    """Per side on its support: ``(weights, plan marginal, potential, lam)``."""
    for h, marginal, pot, lam in ((a, P.sum(axis=1), f, reg_m[0]), (b, P.sum(axis=0), g, reg_m[1])):
        s = h > 0
        yield h[s], marginal[s], pot[s], lam


def fixed_point_residual(P, f, g, a, b, reg, reg_m) -> float:
    """The stopping measure of the module docstring, from the plan and the potentials."""
    worst = 0.0
    for h, marginal, pot, lam in _sides(P, f, g, a, b, reg_m):
        tau = 1.0 if math.isinf(lam) else lam / (lam + reg)
        with np.errstate(all="ignore"):
            r = float(np.max(np.abs(tau * (np.log(h / marginal) - pot / lam))))
        worst = max(worst, r if not math.isnan(r) else math.inf)
    return worst


def dual_objective(P, f, g, a, b, reg, reg_m) -> float:
    r"""$\sum_i a_i \lambda_a(1 - e^{-f_i/\lambda_a}) + \sum_j b_j\lambda_b(1 - e^{-g_j/\lambda_b})
    - \varepsilon(\sum P - \sum a \sum b)$ (``<a, f>`` for an exact side), with ``P`` the plan
    of ``(f, g)``: equal to `objective` at the solution."""
    total = -reg * (float(P.sum()) - float(a.sum()) * float(b.sum()))
    for h, _, pot, lam in _sides(P, f, g, a, b, reg_m):
        total += float(np.dot(h, pot)) if math.isinf(lam) else -lam * float(
            np.dot(h, np.expm1(-pot / lam)))
    return total


def final(P, f, g, a, b, C, reg, reg_m, tol, dtype, loop: Status) -> Final:
    """The plan and potentials in the user's units as a `Final`: ``numerical_error`` for a
    non-finite plan, ``optimal_inaccurate`` for an ``optimal`` loop whose fixed-point residual
    recomputed here in float64 exceeds ``tol``.

    ``objective`` is the unbalanced objective, ``primal_residual`` the L1 marginal error of the
    exact sides (``reg_m = inf``; 0 when both are relaxed), ``dual`` the potentials ``(f, g)``
    (``P = a b^T exp((f + g - C)/reg)``); ``info``: ``transport_cost`` ``<C, P>``, ``f``, ``g``,
    ``dual_objective`` (`dual_objective`), ``fixed_point_residual``, ``mass`` ``sum(P)``,
    ``row_marginal`` ``P 1``, ``col_marginal`` ``P^T 1``, ``reg``, ``reg_m``.
    """
    P = np.asarray(P, dtype=np.float64)
    res = fixed_point_residual(P, f, g, a, b, reg, reg_m)
    obj, cost = objective(P, a, b, C, reg, reg_m)
    rows, cols = P.sum(axis=1), P.sum(axis=0)
    err = sum(float(np.abs(m - h).sum()) for lam, m, h in ((reg_m[0], rows, a), (reg_m[1], cols, b))
              if math.isinf(lam))
    status, message = None, ""
    if not np.isfinite(P).all():
        status, message = Status.NUMERICAL_ERROR, "the plan has non-finite entries"
    elif loop is Status.OPTIMAL and not res <= tol:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the fixed-point residual recomputed in float64 on the user's data is "
                   f"{res:.2e} > tol={tol:.1e} (the {dtype} iterations cannot reach this tol)")
    return Final(
        x=P, objective=obj, dual=(f, g), primal_residual=err, status=status, message=message,
        info={"transport_cost": cost, "f": f, "g": g,
              "dual_objective": dual_objective(P, f, g, a, b, reg, reg_m),
              "fixed_point_residual": res, "mass": float(P.sum()), "row_marginal": rows,
              "col_marginal": cols, "reg": reg, "reg_m": tuple(reg_m)},
    )
