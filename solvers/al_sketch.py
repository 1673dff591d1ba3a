r"""Equality-constrained nonlinear programs by the exact augmented Lagrangian with sketched Newton steps.

Paper: I. Hong, S. Na, M. W. Mahoney and M. Kolar, "Constrained Optimization via Exact Augmented
Lagrangian and Randomized Iterative Sketching", ICML 2023 (arXiv:2305.18379; its code is
AdaSketch-Newton). Problem:

$$
\min_{x \in \mathbb{R}^n} f(x) \quad \text{s.t.} \quad c(x) = 0, \qquad c: \mathbb{R}^n \to \mathbb{R}^m,
$$

with Lagrangian $\mathcal{L}(x, \lambda) = f(x) + \lambda^\top c(x)$, Jacobian
$G = \nabla c(x)^\top$ ($m \times n$) and KKT residual $r = (\nabla_x \mathcal{L}, c)$.

**Merit function** (the exact augmented Lagrangian), with penalties $\eta_1, \eta_2 > 0$:

$$
\mathcal{L}_\eta(x, \lambda) = \mathcal{L}(x, \lambda) + \tfrac{\eta_1}{2}\|c(x)\|^2
 + \tfrac{\eta_2}{2}\|\nabla_x \mathcal{L}(x, \lambda)\|^2,
$$

$\nabla_x \mathcal{L}_\eta = \nabla_x\mathcal{L} + \eta_1 G^\top c + \eta_2 \nabla^2_x\mathcal{L}\,
\nabla_x\mathcal{L}$, $\nabla_\lambda \mathcal{L}_\eta = c + \eta_2 G \nabla_x\mathcal{L}$, with the
true Hessian of the Lagrangian (the released code uses $\nabla^2 f$ there; we do not).

**One iteration** (defaults of the paper's code: $\eta_1 = 1$, $\eta_2 = 0.1$, $\delta = 0.1$,
$\xi_B = 0.1$, $\beta = 0.1$, $\nu = 1.5$, $\theta = 1$):

1. $\xi_G = \lambda_{\min}(G G^\top)$; stop (``numerical_error``) if $\xi_G <$ ``rank_tol``.
2. $B = \nabla^2_x\mathcal{L}$, or $B = \nabla^2_x\mathcal{L} + (\xi_B + \|\nabla^2_x\mathcal{L}\|) I$
   when the reduced Hessian $Z^\top \nabla^2_x\mathcal{L} Z$ ($Z$ a null-space basis of $G$) has
   $\lambda_{\min} < 10^{-6}$.
3. $\psi = 20\max(\|B\|^2, 1)/(\min(\xi_G, 1)\min(\xi_B, 1))$,
   $\Upsilon = \max(\|G\|, \|\nabla^2_x\mathcal{L}\|, 1)$,
   $\delta_{\rm trial} = (0.5 - \beta)\eta_2 / ((1 + \eta_1 + \eta_2)\Upsilon^2\psi^2)$,
   $\delta \leftarrow \max(\min(\delta, \delta_{\rm trial}), 10^{-6})$.
4. Solve $K d = -r$, $K = \begin{bmatrix} B & G^\top\\ G & 0\end{bmatrix}$, by randomized sketching
   from $d = 0$ (`cvxkit.solvers.sketch`) until the adaptive accuracy condition
   $\|K\|\,\psi\,\|Kd + r\| \le \theta\,\delta\,\|r\|$ holds.
5. Descent test: if $\nabla\mathcal{L}_\eta^\top d > -\tfrac{\eta_2}{2}\|r\|^2$, set
   $\eta_1 \leftarrow \nu^2\eta_1$, $\eta_2 \leftarrow \eta_2/\nu$,
   $\delta \leftarrow \max(\min(\delta/\nu^4, \delta_{\rm trial}), 10^{-6})$ and re-solve 4 (no more
   adaptation once $\eta_1 > 10^8$ or $\eta_2 < 10^{-8}$).
6. Armijo backtracking from $\alpha = 1$ (halving): accept once
   $\mathcal{L}_\eta(z + \alpha d) \le \mathcal{L}_\eta(z) + \alpha\beta\nabla\mathcal{L}_\eta^\top d$
   (plus a round-off slack, see below).
7. $(x, \lambda) \leftarrow (x, \lambda) + \alpha d$. Stop when $\|r\| \le$ ``tol``.

**Scaling (ours; the tolerance is relative).** The method runs on the scaled program
$\min f/s_f$ s.t. $c_i/s_{c,i} = 0$, with $s_f = \max(\|\nabla f(x_0)\|_\infty,
\max_{ij}|\nabla^2 f(x_0)_{ij}|)$ and $s_{c,i} = \|\nabla c_i(x_0)\|_\infty$ (`problem_scales`;
fall-backs $|f(x_0)|$, $|c_i(x_0)|$, 1). So ``tol`` bounds the relative KKT residual

$$
\sqrt{\|\nabla f(x) + G(x)^\top\lambda\|_2^2 / s_f^2 + \|c(x) / s_c\|_2^2} \le \mathrm{tol},
$$

(``info["kkt_residual"]``; recomputed in the user's units before ``optimal`` is reported),
and every constant of the method ($\eta_1$, $\eta_2$, $\psi$, ``rank_tol``, the Hessian
modification) acts on scale-free quantities: multiplying $f$, or any constraint row, by
$10^k$ leaves the iterates, the status and $x$ unchanged (the multipliers scale accordingly).
``Result.lam``, ``objective``, ``primal_residual`` $\|c(x)\|_2$ and ``dual_residual``
$\|\nabla_x\mathcal{L}\|_2$ are in the user's units; ``info["scales"]`` has $s_f$ and $s_c$.

``sketch="exact"`` is the same outer method with step 4 solved by a direct factorization
(SuperLU for sparse $K$, dense LU otherwise), for comparison.

**Scalable variants of the dense steps** (used when the Jacobian or the Hessian is a scipy.sparse
matrix): $\xi_G$ by Lanczos (``eigsh`` on $GG^\top$ as an operator, tolerance 1e-3); the
reduced-Hessian test replaced by the sufficient test $\lambda_{\min}(\nabla^2_x\mathcal{L}) \ge 10^{-6}$
(a Gershgorin bound, then Lanczos), which may modify $B$ where the exact test would not; the
2-norms $\|B\|, \|G\|, \|K\|$ replaced by the upper bound $\sqrt{\|A\|_1\|A\|_\infty}$, which only
tightens the accuracy condition.

**Deviations**, all conservative: the Armijo test allows a round-off slack of
$10\,\epsilon_{\rm mach}\max(1, |\mathcal{L}_\eta|)$ (as IPOPT does), without which the line
search stalls once $\|r\|^2$ falls below the precision of the merit value; the inner tolerance is floored at ``inner_rtol_floor`` $\cdot
\|r\|$ (default 1e-12), because the condition of step 4 can ask for a relative residual below
machine precision; the rank test uses ``rank_tol`` = 1e-8 (the code's 1e-2 rejects well-posed but
badly scaled problems); the inner loop is capped at ``max_inner`` steps (default
$\max(10^5, 1000(n+m))$; the code: $10^5$).

Statuses: ``optimal`` (relative KKT residual $\le$ ``tol``), ``max_iter``, ``time_limit``, ``numerical_error``
(non-finite values, rank-deficient Jacobian, or a line search that cannot decrease the merit
function: no progress), with the reason in ``Result.info["message"]``.
"""
from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple

import numpy as np
import scipy.sparse as sp

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.sketch import SKETCHES, SketchSystem, exact_solve

INNER = SKETCHES + ("exact",)


class NLPFunctions(NamedTuple):
    r"""Callables of $\min f(x)$ s.t. $c(x) = 0$ (numpy in, numpy or scipy.sparse out).

    ``f(x) -> float``, ``grad(x) -> (n,)``, ``cons(x) -> (m,)``, ``jac(x) -> (m, n)`` (dense or
    sparse), ``hess(x, lam) -> (n, n)`` the Hessian of the Lagrangian
    $\nabla^2 f(x) + \sum_i \lambda_i \nabla^2 c_i(x)$ (dense or sparse, symmetric).
    """

    f: Callable
    grad: Callable
    cons: Callable
    jac: Callable
    hess: Callable


def _max_abs(A) -> float:
    if sp.issparse(A):
        A = sp.csr_matrix(A)  # every format (dia and dok have no max)
        return float(abs(A).max()) if A.nnz else 0.0
    A = np.asarray(A, dtype=np.float64)
    return float(np.abs(A).max()) if A.size else 0.0


def problem_scales(fun: NLPFunctions, x) -> tuple[float, np.ndarray]:
    r"""``(s_f, s_c)``: the objective scale and the constraint-row scales at ``x``.

    $s_f = \max(\|\nabla f(x)\|_\infty, \max_{ij} |\nabla^2 f(x)_{ij}|)$ and
    $s_{c,i} = \|\nabla c_i(x)\|_\infty$ (gradient-based scaling, as in IPOPT, but in both
    directions); a scale that is 0 or not finite falls back to $|f(x)|$ (resp. $|c_i(x)|$),
    then to 1. Both are homogeneous: multiplying $f$ (a row $c_i$) by $t > 0$ multiplies $s_f$
    ($s_{c,i}$) by $t$, so the scaled program $\min f/s_f$ s.t. $c/s_c = 0$ does not change."""
    x = np.asarray(x, dtype=np.float64)
    f = float(fun.f(x))
    g = np.asarray(fun.grad(x), dtype=np.float64).ravel()
    c = np.asarray(fun.cons(x), dtype=np.float64).ravel()
    G = fun.jac(x)
    m = c.size
    H = fun.hess(x, np.zeros(m))
    s_f = max(float(np.max(np.abs(g), initial=0.0)), _max_abs(H))
    if not (math.isfinite(s_f) and s_f > 0):
        s_f = abs(f) if math.isfinite(f) and f != 0 else 1.0
    if sp.issparse(G):
        rows = np.asarray(abs(sp.csr_matrix(G)).max(axis=1).todense()).ravel()
    else:
        rows = np.max(np.abs(np.asarray(G, dtype=np.float64).reshape(m, x.size)), axis=1,
                      initial=0.0)
    s_c = np.where(np.isfinite(rows) & (rows > 0), rows, np.abs(c))
    s_c = np.where(np.isfinite(s_c) & (s_c > 0), s_c, 1.0)
    return float(s_f), s_c.astype(np.float64)


def scaled_functions(fun: NLPFunctions, s_f: float, s_c: np.ndarray) -> NLPFunctions:
    r"""The callables of $\min f/s_f$ s.t. $D c = 0$, $D = \mathrm{diag}(1/s_c)$: gradient
    $\nabla f/s_f$, Jacobian $DG$, Hessian of the scaled Lagrangian at $\tilde\lambda$
    $= \nabla^2_x\mathcal{L}(x, s_f D\tilde\lambda)/s_f$ (multipliers $\lambda = s_f D\tilde\lambda$)."""
    inv_c = 1.0 / s_c

    def jac(x):
        G = fun.jac(x)
        if sp.issparse(G):
            return (sp.diags(inv_c) @ sp.csr_matrix(G)).tocsr()
        return np.asarray(G, dtype=np.float64).reshape(s_c.size, -1) * inv_c[:, None]

    def hess(x, lam):
        H = fun.hess(x, s_f * inv_c * np.asarray(lam, dtype=np.float64))
        return H * (1.0 / s_f)

    return NLPFunctions(lambda x: float(fun.f(x)) / s_f,
                        lambda x: np.asarray(fun.grad(x), dtype=np.float64) / s_f,
                        lambda x: np.asarray(fun.cons(x), dtype=np.float64).ravel() * inv_c,
                        jac, hess)


def _warm_start(warm_start, n: int, m: int):
    r"""``(x, lam, scales)`` from a warm start: a `Result` of the same program (``x``,
    ``info["lam"]``, and its ``info["scales"]`` so that the tolerance means the same) or a pair
    ``(x, lam)`` (``lam`` may be None: zeros); ``ValueError`` saying what is expected."""
    x, lam, result = validate.warm_pair(warm_start, ("x", "lam"), (n, m), second_optional=True)
    sc = result.info.get("scales") if result is not None else None
    scales = None
    if isinstance(sc, dict) and np.size(sc.get("constraints")) == m:
        scales = (float(sc["objective"]), np.asarray(sc["constraints"], dtype=np.float64).reshape(m))
    return x, lam, scales


class _Point(NamedTuple):
    """Function values at one primal-dual point."""

    x: np.ndarray
    lam: np.ndarray
    f: float
    g: np.ndarray
    c: np.ndarray
    G: object
    gL: np.ndarray  # grad f + G^T lam
    rnorm: float  # ||(gL, c)||


class State(NamedTuple):
    pt: _Point
    eta1: float
    eta2: float
    delta: float
    alpha: float
    inner_steps: int  # this iteration (all re-solves)
    message: str | None  # set on failure


class Data(NamedTuple):
    fun: NLPFunctions
    sketch: str
    bk: Backend
    tol: float
    xi_B: float
    beta: float
    nu: float
    theta: float
    rank_tol: float
    inner_rtol_floor: float
    max_inner: int
    max_backtracks: int
    seed: int
    trace: dict  # per-iteration records, appended by step
    objective_scale: float = 1.0  # s_f: the monitor reports f in the user's units


def _evaluate(fun: NLPFunctions, x, lam) -> _Point:
    f = float(fun.f(x))
    g = np.asarray(fun.grad(x), dtype=np.float64).ravel()
    c = np.asarray(fun.cons(x), dtype=np.float64).ravel()
    G = fun.jac(x)
    G = G.tocsr() if sp.issparse(G) else np.asarray(G, dtype=np.float64).reshape(c.size, x.size)
    gL = g + G.T @ lam
    rnorm = math.sqrt(float(gL @ gL) + float(c @ c))
    return _Point(x, lam, f, g, c, G, gL, rnorm)


def _finite(pt: _Point) -> bool:
    G = pt.G.data if sp.issparse(pt.G) else pt.G
    return bool(math.isfinite(pt.f) and math.isfinite(pt.rnorm) and np.isfinite(G).all())


def _merit(pt: _Point, eta1, eta2) -> float:
    return (pt.f + float(pt.lam @ pt.c) + 0.5 * eta1 * float(pt.c @ pt.c)
            + 0.5 * eta2 * float(pt.gL @ pt.gL))


def _merit_magnitude(pt: _Point, eta1, eta2) -> float:
    """The sum of the magnitudes of the merit function's terms (its round-off scale)."""
    return (abs(pt.f) + abs(float(pt.lam @ pt.c)) + 0.5 * eta1 * float(pt.c @ pt.c)
            + 0.5 * eta2 * float(pt.gL @ pt.gL))


def _norm2(A) -> float:
    """The spectral norm (dense), or the upper bound sqrt(||A||_1 ||A||_inf) (sparse)."""
    if sp.issparse(A):
        A = abs(A)
        n1 = float(A.sum(axis=0).max()) if A.nnz else 0.0
        ninf = float(A.sum(axis=1).max()) if A.nnz else 0.0
        return math.sqrt(n1 * ninf)
    return float(np.linalg.norm(A, 2)) if A.size else 0.0


def _lambda_min_sym(A, tol=1e-3) -> float:
    """Smallest eigenvalue of a symmetric matrix (dense: LAPACK; sparse/operator: Lanczos)."""
    if isinstance(A, np.ndarray):
        return float(np.linalg.eigvalsh(A)[0])
    import scipy.sparse.linalg as spla

    n = A.shape[0]
    if n <= 200:
        M = A.toarray() if sp.issparse(A) else A @ np.eye(n)
        return float(np.linalg.eigvalsh(M)[0])
    v0 = np.ones(n)
    try:
        return float(spla.eigsh(A, k=1, which="SA", tol=tol, v0=v0, return_eigenvectors=False)[0])
    except spla.ArpackNoConvergence as e:
        if len(e.eigenvalues):
            return float(np.min(e.eigenvalues))
        raise


def _xi_G(G) -> float:
    if sp.issparse(G):
        import scipy.sparse.linalg as spla

        m = G.shape[0]
        op = spla.LinearOperator((m, m), matvec=lambda v: G @ (G.T @ v), dtype=np.float64)
        return _lambda_min_sym(op)
    return float(np.linalg.eigvalsh(G @ G.T)[0])


def _hessian_modification(H, G, xi_B) -> tuple[object, bool, float]:
    """``(B, modified, ||H||)``: step 2 of the iteration (see the module docstring)."""
    normH = _norm2(H)
    if sp.issparse(H) or sp.issparse(G):
        H = sp.csr_matrix(H)
        d = H.diagonal()
        gersh = float(np.min(d - (abs(H).sum(axis=1).A1 - np.abs(d))))
        pd = gersh >= 1e-6 or _lambda_min_sym(H) >= 1e-6
        if pd:
            return H, False, normH
        return (H + (xi_B + normH) * sp.identity(H.shape[0], format="csr")).tocsr(), True, normH
    m, n = G.shape
    if m < n:
        Q, _ = np.linalg.qr(G.T, mode="complete")
        Z = Q[:, m:]
        lmin = float(np.linalg.eigvalsh(Z.T @ H @ Z)[0])
    else:
        lmin = math.inf  # no null space: the reduced Hessian is empty
    if lmin >= 1e-6:
        return H, False, normH
    return H + (xi_B + normH) * np.eye(n), True, normH


def _kkt_matrix(B, G):
    if sp.issparse(B) or sp.issparse(G):
        return sp.bmat([[sp.csr_matrix(B), sp.csr_matrix(G).T], [sp.csr_matrix(G), None]],
                       format="csr")
    m = G.shape[0]
    return np.block([[B, G.T], [G, np.zeros((m, m))]])


def _fail(s: State, msg: str) -> State:
    return s._replace(message=msg, alpha=0.0, inner_steps=0)


def _step(bk: Backend, s: State, d: Data) -> State:
    if s.message is not None:
        return s
    pt = s.pt
    n, m = pt.x.size, pt.c.size
    rec = {"resolves": 0, "inner_steps": 0, "flops": 0.0, "time_inner": 0.0, "modified": False}
    H = d.fun.hess(pt.x, pt.lam)
    H = sp.csr_matrix(H) if sp.issparse(H) else np.asarray(H, dtype=np.float64).reshape(n, n)
    if not np.isfinite(H.data if sp.issparse(H) else H).all():
        return _fail(s, "non-finite Hessian of the Lagrangian")
    xi_G = _xi_G(pt.G)
    if not xi_G >= d.rank_tol:
        return _fail(s, f"constraint Jacobian is (nearly) rank deficient: lambda_min(G G^T) = "
                        f"{xi_G:.3g} < rank_tol = {d.rank_tol:.1e} (LICQ fails)")
    B, modified, normH = _hessian_modification(H, pt.G, d.xi_B)
    rec["modified"] = modified
    normB, normG = _norm2(B), _norm2(pt.G)
    psi = 20 * max(normB**2, 1.0) / (min(xi_G, 1.0) * min(d.xi_B, 1.0))
    ups = max(normG, normH, 1.0)
    eta1, eta2 = s.eta1, s.eta2

    def delta_trial(e1, e2):
        return (0.5 - d.beta) * e2 / ((1 + e1 + e2) * ups**2 * psi**2)

    delta = max(min(s.delta, delta_trial(eta1, eta2)), 1e-6)
    K = _kkt_matrix(B, pt.G)
    normK = _norm2(K)
    rhs = -np.concatenate([pt.gL, pt.c])
    system = None if d.sketch == "exact" else SketchSystem(K, backend=d.bk.name)
    HgL = H @ pt.gL
    it = len(d.trace["inner_steps"])
    while True:
        t0 = time.perf_counter()
        if d.sketch == "exact":
            step, info = exact_solve(K, rhs)
            rec["fill"] = info["fill"]
        else:
            tol_in = max(d.theta * delta * pt.rnorm / (normK * psi), d.inner_rtol_floor * pt.rnorm)
            seed = int(np.random.SeedSequence([d.seed, it, rec["resolves"]]).generate_state(1)[0])
            c0 = system.compile_time
            step, info = system.solve(rhs, tol_in, d.sketch, d.max_inner, seed)
            rec["inner_steps"] += info.steps
            rec["flops"] += info.flops
            rec["compile_time"] = rec.get("compile_time", 0.0) + system.compile_time - c0
        rec["time_inner"] += time.perf_counter() - t0 - (system.compile_time - c0 if system else 0)
        if not np.isfinite(step).all():
            return _fail(s, "non-finite Newton step")
        dx, dl = step[:n], step[n:]
        grad_x = pt.gL + eta1 * (pt.G.T @ pt.c) + eta2 * HgL
        grad_l = pt.c + eta2 * (pt.G @ pt.gL)
        slope = float(grad_x @ dx + grad_l @ dl)
        if slope <= -0.5 * eta2 * pt.rnorm**2 or eta1 > 1e8 or eta2 < 1e-8:
            break
        eta1, eta2 = d.nu**2 * eta1, eta2 / d.nu
        delta = max(min(delta / d.nu**4, delta_trial(eta1, eta2)), 1e-6)
        rec["resolves"] += 1
    rec.update(eta1=eta1, eta2=eta2, slope=slope)
    d.trace["inner_steps"].append(rec["inner_steps"])
    d.trace["records"].append(rec)
    if not slope < 0:
        return _fail(s._replace(eta1=eta1, eta2=eta2),
                     f"no descent direction for the merit function (slope {slope:.3g}) with "
                     f"eta1 = {eta1:.3g}, eta2 = {eta2:.3g}: no progress")
    phi0 = _merit(pt, eta1, eta2)
    # round-off allowance: relative to the magnitudes of the merit's terms (the program is
    # scaled, so no absolute floor is needed, and one would not be scale-free)
    slack = 10 * np.finfo(np.float64).eps * _merit_magnitude(pt, eta1, eta2)
    alpha = 1.0
    for _ in range(d.max_backtracks):
        try:
            new = _evaluate(d.fun, pt.x + alpha * dx, pt.lam + alpha * dl)
        except (FloatingPointError, ValueError, ZeroDivisionError, OverflowError):
            new = None
        if new is not None and _finite(new) and (
            _merit(new, eta1, eta2) <= phi0 + alpha * d.beta * slope + slack
        ):
            return State(new, eta1, eta2, delta, alpha, rec["inner_steps"], None)
        alpha *= 0.5
    return _fail(s._replace(eta1=eta1, eta2=eta2, inner_steps=rec["inner_steps"]),
                 f"line search failed: no decrease of the merit function after "
                 f"{d.max_backtracks} halvings (no progress)")


def _monitor(bk, s: State, d: Data) -> dict:
    pt = s.pt
    bad = s.message is not None
    return {
        "kkt": math.nan if bad else pt.rnorm,
        "constraint": float(np.linalg.norm(pt.c)),
        "objective": pt.f * d.objective_scale,
        "alpha": s.alpha,
        "inner_steps": float(s.inner_steps),
        "eta1": s.eta1,
    }


def _converged(bk, s: State, d: Data) -> bool:
    return s.message is None and s.pt.rnorm <= d.tol


ALGORITHM = Algorithm("al_sketch", _step, _monitor, _converged)


def al_sketch(fun: NLPFunctions, x0, lam0=None, *, sketch: str = "rk", tol: float = 1e-6,
              max_iter: int = 1000, time_limit: float = math.inf, verbose: bool = False,
              progress: bool | None = None, callback=None, check_every: int | None = None, seed: int = 0, warm_start=None,
              dtype: str = "float64", backend: str = "numpy", eta1: float = 1.0,
              eta2: float = 0.1, delta: float = 0.1, xi_B: float = 0.1, beta: float = 0.1,
              nu: float = 1.5, theta: float = 1.0, rank_tol: float = 1e-8,
              inner_rtol_floor: float = 1e-12, max_inner: int | None = None,
              max_backtracks: int = 60) -> Result:
    r"""Solve $\min f(x)$ s.t. $c(x) = 0$ by the exact augmented Lagrangian method (module docstring).

    Args:
        fun: the `NLPFunctions` of the program.
        x0: starting point (n,); lam0: starting multipliers (m,), default zeros.
        sketch: ``"rk"`` (randomized Kaczmarz), ``"gaussian"``, or ``"exact"`` (direct solves).
        tol: stop when the relative KKT residual (module docstring, Scaling) is $\le$ ``tol``.
        max_iter, time_limit, verbose, callback, check_every, seed: the common options
            (`cvxkit.solvers.driver.Options`); ``seed`` fixes the sketches.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        warm_start: a `Result` of the same program (its ``x``, ``info["lam"]`` and scales) or a
            pair ``(x, lam)`` with shapes (n,), (m,) (``lam`` may be None); overrides ``x0``
            and ``lam0``. ``ValueError`` for anything else, a wrong shape included.
        dtype: only ``"float64"`` (the inner accuracy condition needs it).
        backend: ``"numpy"`` (numba sketch kernels) or ``"jax"`` (the sketch loop as one jitted
            ``lax.while_loop``); the outer iteration (line search, penalty updates) is a host
            loop on both.
        eta1, eta2, delta, xi_B, beta, nu, theta: the method's parameters (module docstring;
            defaults are those of the paper's code).
        rank_tol: fail when $\lambda_{\min}(GG^\top) <$ ``rank_tol``.
        inner_rtol_floor: floor of the inner tolerance relative to $\|r\|$.
        max_inner: sketch steps per inner solve, default $\max(10^5, 1000(n+m))$.
        max_backtracks: line-search halvings before giving up.

    Returns:
        `Result` with ``x``, ``objective`` $f(x)$, ``primal_residual`` $\|c(x)\|_2$,
        ``dual_residual`` $\|\nabla_x\mathcal{L}(x, \lambda)\|_2$ and ``info``: ``lam``,
        ``kkt_residual`` (relative), ``scales``, ``message``, ``inner_steps`` (per iteration), ``inner_flops`` and
        ``inner_time`` (totals), ``hessian_modified`` (iterations), ``eta1``, ``eta2``,
        ``records`` (per-iteration details). ``compile_time`` is the JAX compilation of the
        sketch loops (excluded from ``solve_time``); the JAX derivatives of a
        `NonlinearProgram` are compiled when it is built.
    """
    t_setup = time.perf_counter()
    validate.choice("sketch", sketch, INNER)
    if dtype != "float64":
        raise ValueError(f"dtype must be 'float64' (got {dtype!r}): al_sketch computes in float64 "
                         "only, its inner accuracy condition asks for residuals far below "
                         "float32 precision")
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, warm_start=warm_start,
                   dtype=dtype, progress=progress)
    bk = get_backend(backend)
    for name, v in (("eta1", eta1), ("eta2", eta2), ("delta", delta), ("xi_B", xi_B),
                    ("nu", nu), ("theta", theta), ("rank_tol", rank_tol),
                    ("inner_rtol_floor", inner_rtol_floor)):
        validate.positive(name, v)
    validate.positive("beta", beta, upper=0.5)
    if not validate.positive("nu", nu) > 1:
        raise ValueError(f"nu must be > 1, got {nu!r}")
    max_inner = validate.integer("max_inner", max_inner, allow_none=True)
    max_backtracks = validate.integer("max_backtracks", max_backtracks)
    if not isinstance(fun, NLPFunctions):
        raise TypeError(f"fun must be an NLPFunctions, got {type(fun).__name__}")
    x0 = validate.float_array("x0", x0, ndim=1, nonempty=True, finite=True, copy=True)
    c0 = np.asarray(fun.cons(x0), dtype=np.float64).ravel()
    n, m = x0.size, c0.size
    lam0 = np.zeros(m) if lam0 is None else validate.float_array("lam0", lam0, finite=True,
                                                                  copy=True)
    if lam0.shape != (m,):
        raise ValueError(f"lam0 must be a finite array of shape ({m},), got {lam0.shape}")
    scales = None
    if warm_start is not None:
        x0, lam0, scales = _warm_start(warm_start, n, m)
    if max_inner is None:
        max_inner = max(100_000, 1000 * (n + m))
    user_fun = fun
    try:
        if scales is None:
            scales = problem_scales(fun, x0)
    except (FloatingPointError, ZeroDivisionError, OverflowError):
        scales = (1.0, np.ones(m))
    s_f, s_c = scales
    fun = scaled_functions(fun, s_f, s_c)
    lam0 = lam0 * s_c / s_f
    trace = {"inner_steps": [], "records": []}
    data = Data(fun, sketch, bk, float(tol), float(xi_B), float(beta), float(nu), float(theta),
                float(rank_tol), float(inner_rtol_floor), int(max_inner), int(max_backtracks),
                int(seed), trace, s_f)
    message = None
    try:
        pt = _evaluate(fun, x0, lam0)
    except (FloatingPointError, ZeroDivisionError, OverflowError) as e:
        pt, message = None, f"evaluation failed at x0: {e}"
    if pt is not None and not _finite(pt):
        message = "non-finite function values at x0"
    if pt is None:
        nan = np.full(m, np.nan)
        pt = _Point(x0, lam0, math.nan, np.full(n, np.nan), nan, np.zeros((m, n)),
                    np.full(n, np.nan), math.nan)
    state = State(pt, float(eta1), float(eta2), float(delta), 0.0, 0, message)
    setup_time = time.perf_counter() - t_setup
    with np.errstate(all="ignore"):
        out = run(ALGORITHM, get_backend("numpy"), state, data, opts)
    s = out.state
    recs = trace["records"]
    compile_time = float(sum(r.get("compile_time", 0.0) for r in recs))
    lam = s.pt.lam * s_f / s_c  # the user's multipliers
    c_user = s.pt.c * s_c
    gL_user = s.pt.gL * s_f
    status, message = _verdict(out.status, s, gL_user, c_user, s_f, s_c, tol, max_iter)
    info = {
        "lam": lam, "kkt_residual": s.pt.rnorm, "message": message or None, "sketch": sketch,
        "scales": {"objective": s_f, "constraints": s_c.copy()},
        "inner_steps": list(trace["inner_steps"]),
        "inner_flops": float(sum(r["flops"] for r in recs)),
        "inner_time": float(sum(r["time_inner"] for r in recs)),
        "hessian_modified": int(sum(r["modified"] for r in recs)),
        "eta1": s.eta1, "eta2": s.eta2, "records": recs,
    }
    final = Final(x=s.pt.x, objective=s.pt.f * s_f, dual=lam,
                  primal_residual=float(np.linalg.norm(c_user)),
                  dual_residual=float(np.linalg.norm(gL_user)), info=info, status=status,
                  message=message)
    # the sketch loops' JAX compilation is part of the loop's time: reported apart
    return finish(final, method="al_sketch", backend=bk.name,
                  run=out._replace(compile_time=compile_time), setup_time=setup_time,
                  solve_time=out.solve_time - compile_time)


def _verdict(loop: Status, s: State, gL_user, c_user, s_f, s_c, tol, max_iter):
    """``(status, message)``: the final check's verdict (``None``: the loop's status stands) and
    why the run stopped. A failure recorded in the state is ``numerical_error``; an ``optimal``
    loop is rechecked in the user's units (the definition of ``tol``)."""
    if s.message is not None:
        return Status.NUMERICAL_ERROR, s.message
    if loop is Status.OPTIMAL:
        kkt = math.hypot(float(np.linalg.norm(gL_user)) / s_f,
                         float(np.linalg.norm(c_user / s_c)))
        if not kkt <= tol * (1 + 1e-6):
            return Status.NUMERICAL_ERROR, (f"relative KKT residual {kkt:.3g} in the user's units "
                                            f"exceeds tol {tol:.1e} (round-off in the scaled "
                                            "problem)")
    return None, {
        Status.MAX_ITER: f"maximum iterations ({max_iter}) reached with KKT residual "
                         f"{s.pt.rnorm:.3g}",
        Status.TIME_LIMIT: f"time limit reached with KKT residual {s.pt.rnorm:.3g}",
        Status.NUMERICAL_ERROR: "non-finite values",
        Status.OPTIMAL: f"KKT residual {s.pt.rnorm:.3g} <= tol {tol:.1e}",
    }.get(loop, "")
