r"""Smooth equality-constrained nonlinear programs $\min f(x)$ s.t. $c(x) = 0$.

Solved by the exact augmented Lagrangian method with randomized iterative sketching of the
Newton–KKT system (Hong, Na, Mahoney & Kolar, "Constrained Optimization via Exact Augmented
Lagrangian and Randomized Iterative Sketching", ICML 2023), method ``"al_sketch"``
(`cvxkit.solvers.al_sketch`).

``NonlinearProgram(f, c, x0)`` takes either JAX-traceable ``f`` and ``c`` (written with
``jax.numpy``; gradient, Jacobian and Hessian of the Lagrangian by JAX autodiff) or numpy callables
with user-supplied derivatives (``grad``, ``jac``, ``hess``; the Jacobian and Hessian may be
scipy.sparse matrices, which switches the solver to its scalable code path).

Scalable test problems (sparse derivatives, any size): `random_sparse_nlp` (a random sparse
constraint Jacobian, whose KKT matrix fills in badly under LU) and `control_nlp` (a
discrete-time optimal-control problem, banded KKT matrix). The Hock–Schittkowski set is in
`cvxkit.problems.hock_schittkowski`.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import scipy.sparse as sp

from cvxkit.problems.base import Problem, user_callables
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.validate import float_array


def _x64():
    from cvxkit.solvers.backend import get_backend

    return get_backend("jax").precision()


def _reference_result(method: str, x, objective, ok: bool = True, **fields) -> Result:
    """A reference `Result` (the known optimum or a scipy solve, not a cvxkit method):
    ``optimal`` when ``ok``, else ``numerical_error``."""
    return Result(x=x, status=Status.OPTIMAL if ok else Status.NUMERICAL_ERROR,
                  objective=objective, method=method, **fields)


class NonlinearProgram(Problem):
    r"""$\min_x f(x)$ s.t. $c(x) = 0$, $f: \mathbb{R}^n \to \mathbb{R}$, $c: \mathbb{R}^n \to \mathbb{R}^m$, $1 \le m \le n$.

    Args:
        f: objective, ``x -> scalar``.
        c: constraints, ``x -> (m,)``.
        x0: starting point (n,), finite.
        grad: optional ``x -> (n,)``; jac: optional ``x -> (m, n)`` (ndarray or scipy.sparse);
            hess: optional ``(x, lam) -> (n, n)``, the Hessian of the Lagrangian
            $\nabla^2 f(x) + \sum_i \lambda_i \nabla^2 c_i(x)$ (ndarray or scipy.sparse).
            Any of them left out is derived by JAX autodiff (``jax.grad``, ``jax.jacfwd``,
            ``jax.hessian``), which needs ``f`` and ``c`` JAX-traceable.
        lam0: starting multipliers (m,), default zeros.
        known_optimum: the optimal value $f^*$, when known (test problems); `check` then
            compares with it. known_solution: $x^*$ (optional, for the distance in `check`).
        cvxpy_model: optional ``x_var -> (objective, constraints)`` in CVXPY, for convex
            programs; enables `to_cvxpy` and makes CVXPY the reference when $f^*$ is not known.
        name: a label for tables.

    Reference used by `check`: the known optimum if given; else the CVXPY model if given;
    else scipy's ``trust-constr`` from the same ``x0`` (a local solution; cached).
    The relative gap is $|f(x) - f^*| / \max(|f^*|, 1)$ (``objective_scale = 1``), the usual
    convention for test sets whose optima include $f^* = 0$.

    Raises ``ValueError`` on bad input: wrong shapes, non-finite ``x0`` or values at ``x0``,
    $m = 0$ or $m > n$, non-callables, or ``f``/``c`` that JAX cannot trace when a derivative
    is left out.
    """

    family = "nlp"
    methods = {"al_sketch": "_solve_al_sketch"}
    objective_scale = 1.0

    def __init__(self, f, c, x0, *, grad=None, jac=None, hess=None, lam0=None,
                 known_optimum: float | None = None, known_solution=None,
                 cvxpy_model: Callable | None = None, name: str = ""):
        for nm, fn in (("f", f), ("c", c), ("grad", grad), ("jac", jac), ("hess", hess),
                       ("cvxpy_model", cvxpy_model)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{nm} must be callable, got {type(fn).__name__}")
        if f is None or c is None:
            raise ValueError("f and c must be callables")
        x0 = float_array("x0", x0, ndim=1, nonempty=True, finite=True, copy=True)
        self.x0, self.name = x0, name
        self.uses_jax = grad is None or jac is None or hess is None
        self._f_user, self._c_user = f, c
        if self.uses_jax:
            self._build_jax(f, c, grad, jac, hess)
        else:
            self._f, self._c, self._grad, self._jac, self._hess = f, c, grad, jac, hess
        n = x0.size
        with user_callables("evaluating f, c or their derivatives at x0 failed"):
            f0 = self.objective(x0)
            c0 = self.constraints(x0)
            g0 = self.gradient(x0)
            G0 = self.jacobian(x0)
        m = c0.size
        if m == 0:
            raise ValueError("c(x0) is empty: give at least one equality constraint")
        if m > n:
            raise ValueError(f"more constraints than variables (m={m} > n={n}): the method "
                             "needs a full-row-rank Jacobian")
        self.n, self.m = n, m
        self.lam0 = (np.zeros(m) if lam0 is None
                     else float_array("lam0", lam0, finite=True, copy=True))
        if self.lam0.shape != (m,):
            raise ValueError(f"lam0 must be a finite array of shape ({m},), got {self.lam0.shape}")
        if g0.shape != (n,):
            raise ValueError(f"grad(x0) must have shape ({n},), got {g0.shape}")
        if G0.shape != (m, n):
            raise ValueError(f"jac(x0) must have shape ({m}, {n}), got {G0.shape}")
        H0 = self.hessian(x0, self.lam0)
        if H0.shape != (n, n):
            raise ValueError(f"hess(x0, lam) must have shape ({n}, {n}), got {H0.shape}")
        if not (math.isfinite(f0) and np.isfinite(c0).all() and np.isfinite(g0).all()):
            raise ValueError("f, c or grad is not finite at x0")
        self.known_optimum = (None if known_optimum is None else
                              float(float_array("known_optimum", known_optimum, ndim=0,
                                                finite=True)))
        self.known_solution = (None if known_solution is None else
                               float_array("known_solution", known_solution, copy=True))
        if self.known_solution is not None and self.known_solution.shape != (n,):
            raise ValueError(f"known_solution must have shape ({n},)")
        self._cvx = cvxpy_model

    # --- derivatives ------------------------------------------------------------------
    def _build_jax(self, f, c, grad, jac, hess):
        import jax
        import jax.numpy as jnp

        def lag(x, lam):
            return f(x) + jnp.dot(c(x), lam)

        jf, jc = jax.jit(f), jax.jit(c)
        jg = jax.jit(jax.grad(f)) if grad is None else None
        jj = jax.jit(jax.jacfwd(c)) if jac is None else None
        jh = jax.jit(jax.hessian(lag)) if hess is None else None

        def wrap(fn):
            def call(*args):
                with _x64():
                    return np.asarray(fn(*(jnp.asarray(a, dtype=jnp.float64) for a in args)))
            return call

        self._f = lambda x: float(wrap(jf)(x))
        self._c = wrap(jc)
        self._grad = grad if grad is not None else wrap(jg)
        self._jac = jac if jac is not None else wrap(jj)
        self._hess = hess if hess is not None else wrap(jh)
        self._jax_fns = (jf, jc)

    def objective(self, x) -> float:
        """$f(x)$."""
        return float(self._f(self._as_x(x)))

    def constraints(self, x) -> np.ndarray:
        """$c(x)$, shape (m,)."""
        return np.asarray(self._c(self._as_x(x)), dtype=np.float64).ravel()

    def gradient(self, x) -> np.ndarray:
        r"""$\nabla f(x)$, shape (n,)."""
        return np.asarray(self._grad(self._as_x(x)), dtype=np.float64).ravel()

    def jacobian(self, x):
        r"""$G(x) = \nabla c(x)^\top$, shape (m, n): ndarray or scipy.sparse."""
        G = self._jac(self._as_x(x))
        return G.tocsr() if sp.issparse(G) else np.atleast_2d(np.asarray(G, dtype=np.float64))

    def hessian(self, x, lam):
        r"""$\nabla^2_x \mathcal{L}(x, \lambda)$, shape (n, n): ndarray or scipy.sparse."""
        H = self._hess(self._as_x(x), np.asarray(lam, dtype=np.float64))
        return H.tocsr() if sp.issparse(H) else np.atleast_2d(np.asarray(H, dtype=np.float64))

    def _as_x(self, x) -> np.ndarray:
        x = float_array("x", x)
        if x.shape != self.x0.shape:
            raise ValueError(f"x must have shape {self.x0.shape}, got {x.shape}")
        return x

    def functions(self):
        """The `cvxkit.solvers.al_sketch.NLPFunctions` handed to the solver."""
        from cvxkit.solvers.al_sketch import NLPFunctions

        return NLPFunctions(self._f, self._grad, self._c, self._jac, self._hess)

    # --- Problem interface ------------------------------------------------------------
    def default_method(self) -> str:
        return "al_sketch"

    def multipliers(self, x) -> np.ndarray:
        r"""Least-squares multipliers $\arg\min_\lambda \|\nabla f(x) + G(x)^\top\lambda\|_2$."""
        g, G = self.gradient(x), self.jacobian(x)
        if sp.issparse(G):
            import scipy.sparse.linalg as spla

            return spla.lsqr(G.T, -g, atol=1e-14, btol=1e-14, iter_lim=10 * G.shape[1])[0]
        return np.linalg.lstsq(G.T, -g, rcond=None)[0]

    def residuals(self, x) -> dict[str, float]:
        r"""``constraint`` $\|c(x)\|_2$ and ``stationarity``
        $\min_\lambda \|\nabla f(x) + G(x)^\top\lambda\|_2$ (the KKT residual with the best
        multipliers for ``x``)."""
        x = self._as_x(x)
        lam = self.multipliers(x)
        G = self.jacobian(x)
        return {"constraint": float(np.linalg.norm(self.constraints(x))),
                "stationarity": float(np.linalg.norm(self.gradient(x) + G.T @ lam))}

    def kkt_residual(self, x, lam) -> float:
        r"""$\|(\nabla_x\mathcal{L}(x, \lambda), c(x))\|_2$, the paper's stopping measure."""
        x = self._as_x(x)
        gL = self.gradient(x) + self.jacobian(x).T @ np.asarray(lam, dtype=np.float64)
        c = self.constraints(x)
        return float(np.sqrt(gL @ gL + c @ c))

    def to_cvxpy(self):
        """The CVXPY model given as ``cvxpy_model`` (convex programs only)."""
        if self._cvx is None:
            raise ValueError("no CVXPY model: give cvxpy_model=... (convex programs only)")
        import cvxpy as cp

        x = cp.Variable(self.n)
        obj, cons = self._cvx(x)
        return cp.Problem(cp.Minimize(obj), list(cons)), x

    def reference(self, **solver_options) -> Result:
        """The known optimum, else the CVXPY model, else scipy ``trust-constr`` from ``x0``."""
        cached = getattr(self, "_reference", None)
        if cached is not None and not solver_options:
            return cached
        if self.known_optimum is not None and not solver_options:
            res = _reference_result("known optimum", self.known_solution, self.known_optimum)
        elif self._cvx is not None:
            return super().reference(**solver_options)
        else:
            res = self.trust_constr(**solver_options)
        if not solver_options:
            self._reference = res
        return res

    def trust_constr(self, gtol: float = 1e-10, xtol: float = 1e-12, maxiter: int = 5000,
                     **options) -> Result:
        """Solve with ``scipy.optimize.minimize(method="trust-constr")`` from ``x0`` (exact
        derivatives, the Hessian of the Lagrangian as ``hess`` of the constraint)."""
        import warnings

        from scipy.optimize import NonlinearConstraint, minimize

        hess_c = lambda x, v: self.hessian(x, v) - self.hessian(x, np.zeros(self.m))  # noqa: E731
        con = NonlinearConstraint(self.constraints, 0.0, 0.0, jac=self.jacobian, hess=hess_c)
        hess_f = lambda x: self.hessian(x, np.zeros(self.m))  # noqa: E731
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = minimize(self.objective, self.x0, jac=self.gradient, hess=hess_f,
                         method="trust-constr", constraints=[con],
                         options={"gtol": gtol, "xtol": xtol, "maxiter": maxiter, **options})
        viol = float(np.linalg.norm(self.constraints(r.x)))
        ok = r.status in (1, 2) and viol <= 1e-8
        return _reference_result("scipy/trust-constr", np.asarray(r.x), float(r.fun), ok,
                                 primal_residual=viol, iterations=int(r.nit),
                                 solve_time=time.perf_counter() - t0,
                                 info={"scipy_status": r.status, "message": r.message})

    def _solve_al_sketch(self, backend="numpy", **options):
        from cvxkit.solvers.al_sketch import al_sketch

        if "x0" in options or "lam0" in options:
            raise ValueError("x0 and lam0 are set by the problem; use warm_start=(x, lam)")
        return al_sketch(self.functions(), self.x0, self.lam0, backend=backend, **options)

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return f"NonlinearProgram({label}n={self.n}, m={self.m})"


# ======================================================================================
# Scalable test problems (sparse derivatives)
# ======================================================================================
def random_sparse_nlp(n: int, m: int, nnz_per_row: int = 5, beta: float = 0.1,
                      alpha: float = 0.1, seed: int = 0) -> NonlinearProgram:
    r"""A nonconvex program with a random sparse constraint Jacobian.

    $$
    \min_x \tfrac12\|x - y\|^2 + \tfrac{\alpha}{4}\sum_k x_k^4 \quad\text{s.t.}\quad
    A\,(x + \beta \sin x) = b,
    $$

    with $A$ ($m \times n$) having ``nnz_per_row`` random N(0, 1) entries per row at random columns
    (rows scaled to unit norm), $y \sim N(0, I)$ and $b = A(x_f + \beta\sin x_f)$ for a random
    $x_f$ (so the program is feasible). $G = A\,\mathrm{diag}(1 + \beta\cos x)$ and
    $\nabla^2_x\mathcal{L} = \mathrm{diag}(1 + 3\alpha x^2 - \beta \sin(x) \odot A^\top\lambda)$ are
    sparse; the KKT matrix is well conditioned, but its LU factors fill in (the graph of
    $AA^\top$ is an expander), which is where sketching beats a factorization.
    """
    if not (isinstance(n, (int, np.integer)) and isinstance(m, (int, np.integer)) and 1 <= m <= n):
        raise ValueError(f"need integers 1 <= m <= n, got n={n!r}, m={m!r}")
    if not 1 <= nnz_per_row <= n:
        raise ValueError(f"nnz_per_row must be in [1, n], got {nnz_per_row!r}")
    rng = np.random.default_rng(seed)
    cols = np.array([rng.choice(n, nnz_per_row, replace=False) for _ in range(m)])
    vals = rng.standard_normal((m, nnz_per_row))
    vals /= np.linalg.norm(vals, axis=1, keepdims=True)
    A = sp.csr_matrix((vals.ravel(), (np.repeat(np.arange(m), nnz_per_row), cols.ravel())),
                      shape=(m, n))
    y = rng.standard_normal(n)
    xf = rng.standard_normal(n)
    b = A @ (xf + beta * np.sin(xf))
    AT = A.T.tocsr()

    def f(x):
        return float(0.5 * np.sum((x - y) ** 2) + 0.25 * alpha * np.sum(x**4))

    def grad(x):
        return x - y + alpha * x**3

    def c(x):
        return A @ (x + beta * np.sin(x)) - b

    def jac(x):
        return (A @ sp.diags(1 + beta * np.cos(x))).tocsr()

    def hess(x, lam):
        return sp.diags(1 + 3 * alpha * x**2 - beta * np.sin(x) * (AT @ lam), format="csr")

    return NonlinearProgram(f, c, np.zeros(n), grad=grad, jac=jac, hess=hess,
                            name=f"random sparse (n={n}, m={m})")


def control_nlp(N: int, h: float = 0.1, rho: float = 0.1, seed: int = 0) -> NonlinearProgram:
    r"""A discrete-time nonlinear optimal-control problem (banded KKT matrix).

    States $s_0, \dots, s_N$, controls $u_0, \dots, u_{N-1}$, $x = (s, u)$ ($n = 2N + 1$):

    $$
    \min \tfrac12\sum_{i=0}^{N} (s_i - \tau_i)^2 + \tfrac{\rho}{2}\sum_{i<N} u_i^2
    \quad\text{s.t.}\quad s_0 = 0,\quad s_{i+1} = s_i + h\sin(s_i) + u_i \ (i < N),
    $$

    with a random target $\tau$ (``m = N + 1``). The Jacobian is bidiagonal plus an identity
    block, the Hessian of the Lagrangian diagonal; the KKT matrix is banded, so a sparse LU is
    cheap and nearly fill-free, which is the hard case for sketching.
    """
    if not (isinstance(N, (int, np.integer)) and N >= 1):
        raise ValueError(f"N must be a positive integer, got {N!r}")
    rng = np.random.default_rng(seed)
    tau = np.cumsum(rng.standard_normal(N + 1)) * 0.1
    nS = N + 1
    ii = np.arange(N)

    def split(x):
        return x[:nS], x[nS:]

    def f(x):
        s, u = split(x)
        return float(0.5 * np.sum((s - tau) ** 2) + 0.5 * rho * np.sum(u**2))

    def grad(x):
        s, u = split(x)
        return np.concatenate([s - tau, rho * u])

    def c(x):
        s, u = split(x)
        return np.concatenate([[s[0]], s[1:] - s[:-1] - h * np.sin(s[:-1]) - u])

    def jac(x):
        s, _ = split(x)
        rows = np.concatenate([[0], ii + 1, ii + 1, ii + 1])
        cols = np.concatenate([[0], ii + 1, ii, nS + ii])
        vals = np.concatenate([[1.0], np.ones(N), -1 - h * np.cos(s[:-1]), -np.ones(N)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(N + 1, 2 * N + 1))

    def hess(x, lam):
        s, _ = split(x)
        ds = np.ones(nS)
        ds[:-1] += h * np.sin(s[:-1]) * lam[1:]
        return sp.diags(np.concatenate([ds, rho * np.ones(N)]), format="csr")

    return NonlinearProgram(f, c, np.zeros(2 * N + 1), grad=grad, jac=jac, hess=hess,
                            name=f"optimal control (N={N})")
