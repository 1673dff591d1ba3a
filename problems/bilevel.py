r"""Bilevel programs: an upper-level objective over the solution of a convex lower level.

$$
\min_{x \in X} F(x) = f(x, y^*(x)), \qquad
y^*(x) = \arg\min_{y \in Y} \{ g(x, y) : c(x, y) \le 0 \},
$$

$f$ (``upper``) and $g$ (``lower``) JAX callables, $g$ convex in $y$, $X$ and $Y$ boxes,
optional lower-level constraints $c$ (``lower_constraints``, affine in $(x, y)$). Methods:

* ``"implicit_diff"`` (`cvxkit.solvers.implicit_diff`; Lorraine, Vicol & Duvenaud, AISTATS 2020):
  implicit-function-theorem hypergradients, matrix-free CG; strongly convex lower levels.
* ``"bilevel_penalty"`` (`cvxkit.solvers.bilevel_penalty`; Kwon, Kwon, Wright & Nowak, ICLR
  2024): the fully first-order penalty method, no second derivatives.
* ``"lv_hba"`` (`cvxkit.solvers.lv_hba`; Yao, Yu, Zeng & Zhang, ICLR 2024): the proximal
  Lagrangian value-function method, for constrained (and merely convex) lower levels.

Ready-made families: `HyperparameterTuning` (ridge with one or per-feature penalties, elastic
net, L2-regularized logistic regression; a train/validation split) and `DataHypercleaning`
(per-sample weights of a multinomial logistic regression trained on corrupted labels).
Positive hyperparameters are parametrized by their logarithm, $\lambda = e^{x}$, and sample
weights by a sigmoid, $w_i = 1/(1 + e^{-x_i})$, so that $X = \mathbb{R}^p$.

``reference(param)`` is the lower level solved by CVXPY at the upper-level value ``param``
(default ``x0``; `cvxkit.problems.bilevel_lower`); ``check`` compares the answer's lower-level
solution with it at the answer's $x$ and the hypergradient with central finite differences of
$F$. ``to_cvxpy(param)`` is that lower level as a CVXPY problem (``param`` is the family's
parameter, as ``theta`` of `cvxkit.problems.ParametricConicProgram`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from typing import Callable

import numpy as np

from cvxkit.problems.base import CheckReport, Problem
from cvxkit.problems.bilevel_lower import (
    box, check_callables, cvxpy_model, cvxpy_solve, slsqp, vector, x64,
)
from cvxkit.solvers.driver import Final, finish
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers import validate
from cvxkit.solvers.validate import float_array, is_sparse


@dataclasses.dataclass(frozen=True)
class BilevelCheckReport(CheckReport):
    """`CheckReport` of a bilevel answer at its own ``x``.

    ``objective`` is $f(x, y)$ with the solver's $y$, ``reference_objective`` $f(x, y_{\\rm ref})$
    with $y_{\\rm ref}$ from CVXPY; ``max_violation`` the relative lower-level suboptimality
    $(g(x, y) - g(x, y_{\\rm ref}))_+/\\max(1, |g(x, y_{\\rm ref})|)$ plus the constraint violation;
    ``distance`` $\\|y - y_{\\rm ref}\\|/\\|y_{\\rm ref}\\|$; ``hypergradient_error``
    $\\|\\nabla F - \\nabla_{\\rm fd} F\\| / \\max(\\|\\nabla_{\\rm fd} F\\|, 10^{-3}(1 + |F|))$, the
    implicit hypergradient (our own tight lower solve) against central finite differences of
    $F$ (the full gradient when $p \\le 5$, else derivatives along 5 random directions; the floor compares
    near-stationary points in absolute terms; ``nan`` with lower-level constraints); ``stationarity`` $\\|x - P_X(x - \\nabla F(x))\\|_2$.
    ``ok`` also needs ``hypergradient_error <= hypergradient_rtol`` when it is defined.
    """

    hypergradient_error: float = float("nan")
    hypergradient_rtol: float = 1e-4
    stationarity: float = float("nan")

    def __str__(self) -> str:
        return (super().__str__() + f", hypergradient vs finite differences "
                f"{self.hypergradient_error:.2e} (<= {self.hypergradient_rtol:.0e}?), "
                f"stationarity {self.stationarity:.2e}")


class Bilevel(Problem):
    r"""$\min_{x \in X} f(x, y^*(x))$, $y^*(x) = \arg\min_{y \in Y}\{g(x, y): c(x, y) \le 0\}$.

    Args:
        upper: $f$, ``(x, y) -> scalar``, JAX-traceable. lower: $g$, same, convex in ``y``.
        x0: (p,) start of the upper level. y0: (d,) start of the lower level.
        lower_constraints: optional $c$, ``(x, y) -> (m,)``, $c \le 0$, affine in $(x, y)$;
            only ``"lv_hba"`` handles them.
        x_bounds, y_bounds: optional ``(lo, hi)`` boxes $X$, $Y$ (scalars or arrays, infinite
            allowed).
        lower_solution: optional closed form ``x -> y*(x)`` (JAX).
        lower_cvxpy: optional ``(x, y_var) -> (objective, constraints)``: the lower level at a
            numeric ``x`` in CVXPY; the reference of `check` (else our own tight solve).
        name: a label.

    Raises ``ValueError`` for non-callables, non-finite or mis-shaped starts or bounds,
    callables that fail or are not finite at ``(x0, y0)``, a non-scalar ``upper``/``lower``,
    and a lower level whose Hessian in ``y`` has a negative eigenvalue at ``(x0, y0)`` or at a
    random nearby ``y`` (all eigenvalues when $d \le 200$, else 32 random directions;
    ``implicit_diff`` reports non-positive curvature met later as ``numerical_error``).
    """

    family = "bilevel"
    methods = {"implicit_diff": "_solve_implicit_diff", "bilevel_penalty": "_solve_penalty",
               "lv_hba": "_solve_lv_hba"}

    def __init__(self, upper: Callable, lower: Callable, x0, y0,
                 lower_constraints: Callable | None = None, *, x_bounds=None, y_bounds=None,
                 lower_solution: Callable | None = None, lower_cvxpy: Callable | None = None,
                 name: str = ""):
        for nm, fn in (("upper", upper), ("lower", lower), ("lower_constraints", lower_constraints),
                       ("lower_solution", lower_solution), ("lower_cvxpy", lower_cvxpy)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{nm} must be callable, got {type(fn).__name__}")
        if upper is None or lower is None:
            raise ValueError("upper and lower must be callables")
        self.x0, self.y0 = vector("x0", x0), vector("y0", y0)
        for nm, v in (("x0", self.x0), ("y0", self.y0)):
            if not np.isfinite(v).all():
                raise ValueError(f"{nm} contains NaN or infinite entries")
        self.p, self.d = self.x0.size, self.y0.size
        self.x_lo, self.x_hi = box("x_bounds", x_bounds, self.p)
        self.y_lo, self.y_hi = box("y_bounds", y_bounds, self.d)
        if ((self.x0 < self.x_lo) | (self.x0 > self.x_hi)).any():
            raise ValueError("x0 lies outside x_bounds")
        self.y0 = np.clip(self.y0, self.y_lo, self.y_hi)
        self.name = name
        self._cvx = lower_cvxpy
        from cvxkit.solvers.bilevel_core import BilevelFunctions

        self.functions = BilevelFunctions(upper, lower, lower_solution, lower_constraints)
        self.m, self.lower_strongly_convex = check_callables(self.functions, self.x0, self.y0,
                                                             self.y_lo, self.y_hi)

    # --- the lower level ------------------------------------------------------------------
    @property
    def boxes(self):
        """The `cvxkit.solvers.bilevel_core.Boxes` handed to the solvers."""
        from cvxkit.solvers.bilevel_core import Boxes

        return Boxes(self.x_lo, self.x_hi, self.y_lo, self.y_hi)

    def _as_x(self, x) -> np.ndarray:
        x = float_array("x", x, finite=True).reshape(-1)
        if x.shape != (self.p,):
            raise ValueError(f"x must have shape ({self.p},), got {x.shape}")
        return x

    @functools.cached_property
    def _jitted(self):
        import jax

        from cvxkit.solvers.bilevel_core import clip, implicit_hypergradient, lower_solve

        fns, lo, hi = self.functions, self.y_lo, self.y_hi

        def solve(x, y0, tol):
            if fns.lower_solution is not None:
                return clip(fns.lower_solution(x), lo, hi)
            return lower_solve(lambda v: fns.lower(x, v), y0, lo, hi, 1.0, tol, 200_000).y

        def hyper(x, y):
            return implicit_hypergradient(fns, x, y, 0 * y, lo, hi, 1e-13, 20 * self.d + 100)[0]

        return jax.jit(solve), jax.jit(hyper), jax.jit(fns.upper), jax.jit(fns.lower)

    def solve_lower(self, x, tol: float = 1e-12, y_init=None) -> np.ndarray:
        r"""$y^*(x)$, (d,): the closed form when given, else accelerated projected gradient to
        gradient-mapping norm ``tol`` from ``y_init`` (default ``y0``); with ``lower_constraints``, the CVXPY model when given,
        else scipy SLSQP with JAX derivatives."""
        x = self._as_x(x)
        if self.functions.constraints is not None:
            return self.lower_reference(x)[0] if self._cvx is not None else \
                slsqp(self.functions, x, self.y0, self.y_lo, self.y_hi)
        y_init = self.y0 if y_init is None else vector("y_init", y_init, self.d)
        with x64():
            return np.asarray(self._jitted[0](x, y_init, tol))

    def value(self, x, y=None) -> float:
        r"""$F(x) = f(x, y^*(x))$ (or $f(x, y)$ for a given ``y``)."""
        x = self._as_x(x)
        y = self.solve_lower(x) if y is None else np.asarray(y, dtype=np.float64)
        with x64():
            return float(self._jitted[2](x, y))

    def hypergradient(self, x, y=None) -> np.ndarray:
        r"""$\nabla F(x)$, (p,), by the implicit function theorem at $y^*(x)$ (CG to $10^{-13}$);
        only without ``lower_constraints``."""
        if self.functions.constraints is not None:
            raise ValueError("hypergradient: not defined here with lower_constraints")
        x = self._as_x(x)
        y = self.solve_lower(x) if y is None else np.asarray(y, dtype=np.float64)
        with x64():
            return np.asarray(self._jitted[1](x, y))

    def fd_hypergradient(self, x, h: float = 1e-4, directions=None) -> np.ndarray:
        r"""Central finite differences of $F$ along the rows $v$ of ``directions`` (default: the
        coordinate axes, giving the full gradient, (p,)): $(F(x + hv) - F(x - hv))/(2h)$, the
        lower level solved to $10^{-13}$ warm-started from $y^*(x)$."""
        x = self._as_x(x)
        V = np.eye(self.p) if directions is None else np.atleast_2d(directions)
        y = self.solve_lower(x, 1e-13)
        F = lambda xx: self.value(xx, self.solve_lower(xx, 1e-13, y))  # noqa: E731
        return np.array([(F(x + h * v) - F(x - h * v)) / (2 * h) for v in V])

    # --- CVXPY ----------------------------------------------------------------------------
    def to_cvxpy(self, param=None, *, x=None):
        """``(cvxpy.Problem, y_var)``: the lower level at the upper-level value ``param`` (the
        family's parameter; default ``x0``), from ``lower_cvxpy``. ``x=`` is its former name
        (deprecated)."""
        if x is not None:  # the former keyword
            warnings.warn("to_cvxpy(x=...) is deprecated: use to_cvxpy(param=...)",
                          DeprecationWarning, stacklevel=2)
            param = x if param is None else param
        if self._cvx is None:
            raise ValueError("no CVXPY model of the lower level: give lower_cvxpy=...")
        x = self.x0 if param is None else self._as_x(param)
        return cvxpy_model(self._cvx, x, self.d, self.y_lo, self.y_hi)

    def lower_reference(self, x=None, **solver_options) -> tuple[np.ndarray, Status]:
        """``(y_ref, status)``: CVXPY (Clarabel, tolerance 1e-9, or ``solver_options``) on the
        lower level at ``x``; without ``lower_cvxpy``, our own tight solve (status ``optimal``).
        An ``optimal_inaccurate`` answer at the default settings is solved again at Clarabel's
        defaults (exponential cones)."""
        if self._cvx is None:
            return self.solve_lower(x), Status.OPTIMAL
        prob, y = self.to_cvxpy(x)
        return cvxpy_solve(prob, y, {**self.reference_options(), **solver_options},
                           retry=not solver_options)

    # --- Problem interface ----------------------------------------------------------------
    def default_method(self) -> str:
        return "lv_hba" if self.functions.constraints is not None else "implicit_diff"

    def objective(self, x) -> float:
        """$F(x)$ (the lower level solved by `solve_lower`)."""
        return self.value(x)

    def residuals(self, x) -> dict[str, float]:
        """``x_bounds``: the largest violation of the box $X$ by ``x``."""
        x = self._as_x(x)
        return {"x_bounds": float(max(np.max(self.x_lo - x), np.max(x - self.x_hi), 0.0))}

    def reference(self, param=None, **solver_options) -> Result:
        """The reference at the upper-level value ``param`` (default ``x0``; cached there without
        ``solver_options``): the lower level solved by `lower_reference`; ``x`` = ``param``,
        ``dual`` (and ``info["y"]``) $y_{\rm ref}$, ``objective`` $f(x, y_{\rm ref}) = F(x)$,
        ``status`` the lower solve's. A bilevel program has no single optimum to refer to:
        `check` takes the reference at the answer's ``x``."""
        x = self.x0 if param is None else self._as_x(param)
        cached = param is None and not solver_options
        if cached and getattr(self, "_reference", None) is not None:
            return self._reference
        t0 = time.perf_counter()
        y_ref, status = self.lower_reference(x, **solver_options)
        with x64():
            obj = float(self._jitted[2](x, y_ref))
        how = (f"cvxpy/{solver_options.get('solver', self.reference_options()['solver'])}"
               if self._cvx is not None else
               "slsqp" if self.functions.constraints is not None else "solve_lower")
        res = finish(Final(x=x, objective=obj, dual=y_ref, info={"y": y_ref}, status=status),
                     method=how, backend="numpy", solve_time=time.perf_counter() - t0)
        if cached:
            self._reference = res
        return res

    def check(self, result: Result, rtol: float = 1e-6, atol: float = 1e-6,
              reference: Result | None = None, *, hypergradient_rtol: float = 1e-4,
              fd_step: float = 1e-4) -> BilevelCheckReport:
        """Compare ``result`` at its ``x`` with the reference there (default
        ``reference(result.x)``: CVXPY's lower-level solution) and the hypergradient with
        finite differences (see `BilevelCheckReport`)."""
        import jax.numpy as jnp

        x = self._as_x(result.x)
        y = result.dual if result.dual is not None else result.info["y"]  # the lower level
        y = np.asarray(y, dtype=np.float64)
        ref_res = self.reference(x) if reference is None else reference
        if not np.array_equal(self._as_x(ref_res.x), x):
            raise ValueError("reference must be the reference at result.x "
                             "(prob.reference(result.x))")
        y_ref, ref_status, ref = np.asarray(ref_res.dual), ref_res.status, ref_res.objective
        fns = self.functions
        with x64():
            obj = float(self._jitted[2](x, y))
            g_y, g_ref = float(self._jitted[3](x, y)), float(self._jitted[3](x, y_ref))
            viol = max(g_y - g_ref, 0.0) / max(1.0, abs(g_ref))
            if fns.constraints is not None:
                viol += max(float(jnp.max(fns.constraints(jnp.asarray(x), jnp.asarray(y)))), 0.0)
        viol += np.abs(np.clip(y, self.y_lo, self.y_hi) - y).max()
        gap = abs(obj - ref) / max(abs(ref), 1e-12)
        dist = float(np.linalg.norm(y - y_ref) / max(np.linalg.norm(y_ref), 1e-300))
        if fns.constraints is None:
            hg = self.hypergradient(x)
            V = None
            if self.p > 5:  # directional derivatives along 5 random unit vectors
                V = np.random.default_rng(0).standard_normal((5, self.p))
                V /= np.linalg.norm(V, axis=1, keepdims=True)
            fd = self.fd_hypergradient(x, fd_step, V)
            floor = 1e-3 * (1 + abs(ref))
            herr = float(np.linalg.norm((hg if V is None else V @ hg) - fd)
                         / max(np.linalg.norm(fd), floor))
            stat = float(np.linalg.norm(x - np.clip(x - hg, self.x_lo, self.x_hi)))
        else:
            herr = stat = float("nan")
        ok = bool(result.status.converged and ref_status.converged and gap <= rtol
                  and viol <= atol and (math.isnan(herr) or herr <= hypergradient_rtol))
        return BilevelCheckReport(obj, ref, gap, viol, dist, result.status, ref_status, rtol,
                                  atol, ok, herr, hypergradient_rtol, stat)

    # --- adapters -------------------------------------------------------------------------
    def _unconstrained_only(self, method):
        if self.functions.constraints is not None:
            raise ValueError(f"{method} handles box bounds on y only; use method='lv_hba' for "
                             "lower_constraints")

    def _solve_implicit_diff(self, backend="numpy", **options):
        from cvxkit.solvers.implicit_diff import implicit_diff

        self._unconstrained_only("implicit_diff")
        return self._view(implicit_diff(self.functions, self.x0, self.y0, self.boxes,
                                        backend=backend, **options))

    def _solve_penalty(self, backend="numpy", **options):
        from cvxkit.solvers.bilevel_penalty import bilevel_penalty

        self._unconstrained_only("bilevel_penalty")
        return self._view(bilevel_penalty(self.functions, self.x0, self.y0, self.boxes,
                                          backend=backend, **options))

    def _solve_lv_hba(self, backend="numpy", **options):
        from cvxkit.solvers.lv_hba import lv_hba

        return self._view(lv_hba(self.functions, self.x0, self.y0, self.boxes,
                                 backend=backend, **options))

    def _view(self, res: Result) -> Result:
        """Hook of the families: add the problem's own view of the answer to ``info``."""
        return res

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return f"{type(self).__name__}({label}p={self.p}, d={self.d}, m={self.m})"


# ======================================================================================
# Ready-made families
# ======================================================================================
def _data(name, X, y=None):
    if is_sparse(X):  # every scipy.sparse format (dok is a dict: densify before float_array)
        X = X.toarray()
    X = float_array(name, X, ndim=2, nonempty=True, finite=True, copy=True)
    if y is None:
        return X
    y = float_array(f"the targets of {name}", y, finite=True, copy=True).reshape(-1)
    if y.shape != (X.shape[0],):
        raise ValueError(f"the targets of {name} must have shape ({X.shape[0]},), got {y.shape}")
    return X, y


def train_validation_split(X, y, val_fraction: float = 0.3, seed: int = 0):
    """``(X_train, y_train, X_val, y_val)``: a seeded random split."""
    validate.positive("val_fraction", val_fraction, upper=1.0)
    validate.integer("seed", seed, minimum=0)
    X, y = np.asarray(X), np.asarray(y)
    idx = np.random.default_rng(seed).permutation(len(X))
    n_val = max(1, int(round(val_fraction * len(X))))
    va, tr = idx[:n_val], idx[n_val:]
    return X[tr], y[tr], X[va], y[va]


class HyperparameterTuning(Bilevel):
    r"""Regularization hyperparameters tuned on a validation set.

    Lower level (training, $n$ samples, $w \in \mathbb{R}^d$), upper level (validation):

    * ``model="ridge"``: $g = \|X w - t\|^2/(2n) + \tfrac12\sum_j \lambda_j w_j^2$,
      $f = \|X_v w - t_v\|^2/(2n_v)$; closed-form lower level.
    * ``model="elastic_net"``: $g = \|X w - t\|^2/(2n) + \sum_j \lambda^{(1)}_j|w_j| +
      \tfrac12\sum_j\lambda^{(2)}_j w_j^2$, written smoothly with $w = u - v$, $u, v \ge 0$
      (the lower variable is $(u, v) \in \mathbb{R}^{2d}_+$, a box $Y$); same $f$.
    * ``model="logistic"``: labels $\pm 1$ (or 0/1), $g = \frac1n\sum_i \log(1 + e^{-t_i x_i^\top w})
      + \tfrac12\sum_j\lambda_j w_j^2$, $f$ the validation logistic loss.

    Hyperparameters: $\lambda = e^{x}$ (positivity); one per model term
    (``per_feature=False``: $x \in \mathbb{R}$, or $\mathbb{R}^2$ for the elastic net) or one per
    feature and term (``per_feature=True``: $x \in \mathbb{R}^d$, or $\mathbb{R}^{2d}$).
    ``x0`` defaults to $\log$ 0.1 everywhere; ``penalty_bounds`` (default $[10^{-6}, 10^6]$)
    bound every $\lambda$ (the box $X$ in $\log$ space), so that a penalty whose optimum is 0
    or infinite (a feature the validation set wants free, or removed) stops at a bound and the
    method can converge. No intercept: center the data (or add a column of
    ones, which is then penalized). ``HyperparameterTuning.from_data(X, t, val_fraction, seed,
    ...)`` splits the data. ``penalties(x)`` gives $\lambda$, ``coefficients(y)`` gives $w$.
    """

    MODELS = ("ridge", "elastic_net", "logistic")

    def __init__(self, X_train, t_train, X_val, t_val, model: str = "ridge",
                 per_feature: bool = False, x0=None, penalty_bounds=(1e-6, 1e6), name: str = ""):
        import jax.numpy as jnp

        validate.choice("model", model, self.MODELS)
        per_feature = validate.boolean("per_feature", per_feature)
        X, t = _data("X_train", X_train, t_train)
        Xv, tv = _data("X_val", X_val, t_val)
        if Xv.shape[1] != X.shape[1]:
            raise ValueError(f"X_val has {Xv.shape[1]} features, X_train {X.shape[1]}")
        if model == "logistic":
            t, tv = self._signs(t), self._signs(tv)
        self.model, self.per_feature = model, bool(per_feature)
        self.X_train, self.t_train, self.X_val, self.t_val = X, t, Xv, tv
        n, d = X.shape
        nv = Xv.shape[0]
        k = d if per_feature else 1
        p = 2 * k if model == "elastic_net" else k
        x0 = np.full(p, math.log(0.1)) if x0 is None else vector("x0", x0, p)
        dim = 2 * d if model == "elastic_net" else d
        solution = cvx = None
        y_bounds = (0.0, np.inf) if model == "elastic_net" else None

        if model == "ridge":
            def lower(x, w):
                return jnp.sum((X @ w - t) ** 2) / (2 * n) + 0.5 * jnp.sum(jnp.exp(x) * w**2)

            def upper(x, w):
                return jnp.sum((Xv @ w - tv) ** 2) / (2 * nv)

            G, r = X.T @ X / n, X.T @ t / n

            def solution(x):
                return jnp.linalg.solve(G + jnp.diag(jnp.broadcast_to(jnp.exp(x), (d,))), r)

            def cvx(x, w):
                import cvxpy as cp

                lam = np.broadcast_to(np.exp(x), (d,))
                return (cp.sum_squares(X @ w - t) / (2 * n)
                        + 0.5 * cp.sum_squares(cp.multiply(np.sqrt(lam), w))), []
        elif model == "elastic_net":
            def split(uv):
                return uv[:d] - uv[d:]

            def lower(x, uv):
                l1, l2 = jnp.exp(x[:k]), jnp.exp(x[k:])
                return (jnp.sum((X @ split(uv) - t) ** 2) / (2 * n)
                        + jnp.sum(l1 * (uv[:d] + uv[d:]))
                        + 0.5 * jnp.sum(l2 * (uv[:d] ** 2 + uv[d:] ** 2)))

            def upper(x, uv):
                return jnp.sum((Xv @ split(uv) - tv) ** 2) / (2 * nv)

            def cvx(x, uv):
                import cvxpy as cp

                l1 = np.broadcast_to(np.exp(x[:k]), (d,))
                l2 = np.broadcast_to(np.exp(x[k:]), (d,))
                u, v = uv[:d], uv[d:]
                return (cp.sum_squares(X @ (u - v) - t) / (2 * n) + l1 @ (u + v)
                        + 0.5 * cp.sum_squares(cp.multiply(np.sqrt(l2), u))
                        + 0.5 * cp.sum_squares(cp.multiply(np.sqrt(l2), v))), []
        else:
            def lower(x, w):
                return (jnp.mean(jnp.logaddexp(0.0, -t * (X @ w)))
                        + 0.5 * jnp.sum(jnp.exp(x) * w**2))

            def upper(x, w):
                return jnp.mean(jnp.logaddexp(0.0, -tv * (Xv @ w)))

            def cvx(x, w):
                import cvxpy as cp

                lam = np.broadcast_to(np.exp(x), (d,))
                return (cp.sum(cp.logistic(-cp.multiply(t, X @ w))) / n
                        + 0.5 * cp.sum_squares(cp.multiply(np.sqrt(lam), w))), []

        try:
            lo, hi = (float(b) for b in penalty_bounds)
        except (TypeError, ValueError):
            raise ValueError("penalty_bounds must be a pair of positive numbers") from None
        if not 0 < lo < hi:
            raise ValueError(f"penalty_bounds must satisfy 0 < lo < hi, got {penalty_bounds!r}")
        super().__init__(upper, lower, x0, np.zeros(dim), y_bounds=y_bounds,
                         x_bounds=(math.log(lo), math.log(hi)),
                         lower_solution=solution, lower_cvxpy=cvx,
                         name=name or f"{model}{' per feature' if per_feature else ''}")

    @staticmethod
    def _signs(t):
        vals = set(np.unique(t).tolist())
        if vals <= {0.0, 1.0}:
            return 2 * t - 1
        if vals <= {-1.0, 1.0}:
            return t
        raise ValueError(f"logistic labels must be in {{0, 1}} or {{-1, 1}}, got {sorted(vals)}")

    @classmethod
    def from_data(cls, X, t, val_fraction: float = 0.3, seed: int = 0, **kw):
        """Split ``(X, t)`` at random (`train_validation_split`) and build the problem."""
        X, t = _data("X", X, t)
        return cls(*train_validation_split(X, t, val_fraction, seed), **kw)

    def penalties(self, x) -> np.ndarray:
        r"""$\lambda = e^{x}$ (for the elastic net: $\lambda^{(1)}$ then $\lambda^{(2)}$)."""
        return np.exp(self._as_x(x))

    def coefficients(self, y) -> np.ndarray:
        """The model's weights $w$, (d,), from the lower-level variable."""
        y = np.asarray(y, dtype=np.float64)
        d = self.X_train.shape[1]
        return y[:d] - y[d:] if self.model == "elastic_net" else y

    def _view(self, res: Result) -> Result:
        info = {**res.info, "penalties": np.exp(np.asarray(res.x, dtype=np.float64)),
                "coefficients": self.coefficients(res.info["y"])}
        return res.replace(info=info)


def corrupt_labels(labels, fraction: float, n_classes: int | None = None, seed: int = 0):
    """``(noisy, corrupted)``: a copy of integer ``labels`` with ``fraction`` of them replaced by
    a different class drawn uniformly, and the boolean mask of the replaced entries."""
    labels = np.asarray(labels).astype(int)
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
    k = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(labels), int(round(fraction * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[idx] = (labels[idx] + rng.integers(1, k, idx.size)) % k
    mask = np.zeros(len(labels), bool)
    mask[idx] = True
    return noisy, mask


class DataHypercleaning(Bilevel):
    r"""Per-sample weights that down-weight corrupted training labels (data hyper-cleaning).

    Multinomial logistic regression with weights $W \in \mathbb{R}^{(d+1)\times k}$ (features
    plus a constant column), sample weights $s_i = \sigma(x_i) = 1/(1 + e^{-x_i})$:

    $$
    g(x, W) = \frac1n\sum_{i} \sigma(x_i)\, \ell(W; a_i, c_i) + \frac{\mu}{2}\|W\|_F^2, \qquad
    f(x, W) = \frac1{n_v}\sum_{j} \ell(W; a^v_j, c^v_j),
    $$

    $\ell(W; a, c) = \log\sum_l e^{(W^\top a)_l} - (W^\top a)_c$ (cross-entropy), validation
    labels clean. $x \in \mathbb{R}^n$ (one per training sample), ``x0 = 0`` (weights 1/2).
    The lower variable is $W$ flattened row-major ($d_y = (d+1)k$).

    Args:
        X_train: (n, d). labels_train: (n,) integers in $[0, k)$ (possibly corrupted).
        X_val, labels_val: clean validation data. reg: $\mu > 0$.
        n_classes: $k$ (default: the largest label + 1). corrupted: optional (n,) boolean mask
            of the corrupted samples (for `auc`).
    """

    def __init__(self, X_train, labels_train, X_val, labels_val, reg: float = 1e-2,
                 n_classes: int | None = None, corrupted=None, name: str = ""):
        import jax
        import jax.numpy as jnp

        X, c = _data("X_train", X_train, labels_train)
        Xv, cv = _data("X_val", X_val, labels_val)
        if Xv.shape[1] != X.shape[1]:
            raise ValueError(f"X_val has {Xv.shape[1]} features, X_train {X.shape[1]}")
        for nm, lab in (("labels_train", c), ("labels_val", cv)):
            if (lab != np.round(lab)).any() or (lab < 0).any():
                raise ValueError(f"{nm} must be non-negative integers")
        c, cv = c.astype(int), cv.astype(int)
        k = int(max(c.max(), cv.max())) + 1 if n_classes is None else int(n_classes)
        if k < 2 or c.max() >= k or cv.max() >= k:
            raise ValueError(f"need at least 2 classes and labels below n_classes={k}")
        validate.positive("reg", reg)
        validate.integer("n_classes", n_classes, minimum=2, allow_none=True)
        self.corrupted = None if corrupted is None else np.asarray(corrupted, bool)
        if self.corrupted is not None and self.corrupted.shape != (len(c),):
            raise ValueError(f"corrupted must be a boolean mask of shape ({len(c)},)")
        A = np.hstack([X, np.ones((len(X), 1))])
        Av = np.hstack([Xv, np.ones((len(Xv), 1))])
        d1 = A.shape[1]
        Y, Yv = np.eye(k)[c], np.eye(k)[cv]
        self.n_classes, self.reg = k, float(reg)
        self.X_train, self.labels_train, self.X_val, self.labels_val = X, c, Xv, cv

        def losses(Amat, Ymat, w):
            Z = Amat @ w.reshape(d1, k)
            return jax.nn.logsumexp(Z, axis=1) - jnp.sum(Z * Ymat, axis=1)

        def lower(x, w):
            return jnp.mean(jax.nn.sigmoid(x) * losses(A, Y, w)) + 0.5 * reg * jnp.sum(w**2)

        def upper(x, w):
            return jnp.mean(losses(Av, Yv, w))

        def cvx(x, w):
            import cvxpy as cp

            W = cp.reshape(w, (d1, k), order="C")
            Z = A @ W
            s = 1 / (1 + np.exp(-x))
            ce = cp.log_sum_exp(Z, axis=1) - cp.sum(cp.multiply(Z, Y), axis=1)
            return s @ ce / len(A) + 0.5 * reg * cp.sum_squares(w), []

        super().__init__(upper, lower, np.zeros(len(A)), np.zeros(d1 * k), lower_cvxpy=cvx,
                         name=name or f"hyper-cleaning (n={len(A)}, k={k})")

    def weights(self, x) -> np.ndarray:
        r"""Sample weights $\sigma(x)$, (n,)."""
        return 1 / (1 + np.exp(-self._as_x(x)))

    def auc(self, x) -> float:
        """Area under the ROC curve of "low weight" as a detector of the corrupted samples
        (1: every corrupted sample weighs less than every clean one; 0.5: chance)."""
        if self.corrupted is None:
            raise ValueError("auc needs the corrupted mask (corrupted=...)")
        return rank_auc(-self.weights(x), self.corrupted)

    def _view(self, res: Result) -> Result:
        info = {**res.info, "weights": 1 / (1 + np.exp(-np.asarray(res.x, dtype=np.float64)))}
        if self.corrupted is not None and np.isfinite(res.x).all():
            info["auc"] = self.auc(res.x)
        return res.replace(info=info)


def rank_auc(scores, positive) -> float:
    """ROC AUC of ``scores`` for the boolean labels ``positive`` (Mann–Whitney, ties halved)."""
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("rank_auc needs both positive and negative samples")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
