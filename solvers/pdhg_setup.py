r"""Restarted Halpern PDHG: validation of the LP, preconditioning, step size and the data of
the iteration (`cvxkit.solvers.pdhg_core.Data`) on numpy or JAX.

**Preconditioning.** The rows of $K$ whose infinity norms lie outside $[10^{-4}, 10^4]$ (where
Ruiz's scaling stops) divided by those norms, then 10 rounds of Ruiz equilibration of $K$ (infinity norms,
`cvxkit.solvers.scaling`), then Pock-Chambolle scaling with $\alpha = 1$ (rows by
$1/\sqrt{\lVert K_{i,:}\rVert_1}$, columns by $1/\sqrt{\lVert K_{:,j}\rVert_1}$), then the bounds
and the cost are divided by $\lVert b\rVert_2$ and $\lVert c\rVert_2$ of the equilibrated problem
(cuPDLPx's "bound-objective rescaling", without its ``1 +``: a vector that is zero is left as it
is). The scaled problem is therefore the same (up to rounding) when $c$, the bounds or the rows
are multiplied by a constant, and so are the iterations.

`make_data` puts the scaled matrices on the back end: dense arrays for dense data, else CSR
(numpy), `RowSparse` or BCOO (JAX), split by rows over a device mesh if one is given.

**Batches** (`cvxkit.solvers.lp_batch`): `scale_batch` scales B LPs of one shape at once, with
the numbers of `scale_problem` member by member: the part of $K$ (`scale_matrix`, row- and
column-wise steps only) is made once on the block-diagonal matrix of the members (or once on a
shared $K$), the rest (`rescaling`, the step size, the primal weight) and `make_data`'s vectors
are array code over a leading batch axis, of which one LP is the case without the axis.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import kkt, validate
from cvxkit.solvers.backend import Backend
from cvxkit.solvers.pdhg_core import Data, settings, shard_vector
from cvxkit.solvers.primal_dual import INF_BOUND
from cvxkit.solvers.scaling import MAX_SCALING, MIN_SCALING, ruiz_sparse

#: the step size is STEP_FRACTION / ||K||_2 of the scaled K
STEP_FRACTION = 0.998


def _norm(v):
    """Euclidean norms over the last axis (leading batch axes kept), by the BLAS dot products
    of ``np.linalg.norm`` (the same numbers, member by member)."""
    return np.sqrt((v[..., None, :] @ v[..., :, None])[..., 0, 0])


def _largest(lo, hi):
    """The largest finite bound of each row in magnitude (0 if none)."""
    return np.maximum(np.where(np.isfinite(lo), np.abs(lo), 0.0),
                      np.where(np.isfinite(hi), np.abs(hi), 0.0))


def _scalar(v):
    """``v`` as a float when it is one number (one LP), else as it is (a batch)."""
    return float(v) if np.ndim(v) == 0 else v


def bound_array(name, v, shape, fill, batch=""):
    """A bound array of ``shape``, (size,) or (B, size): ``None`` is ``fill``, a number or a
    (size,) vector is broadcast; entries of magnitude >= 1e20 are infinite (HiGHS's
    convention). ``batch``: how a wrong shape's message names the batch's."""
    size = shape[-1]
    if v is None:
        return np.full(shape, fill)
    v = validate.float_array(name, v)
    if v.ndim == 0:
        v = np.full(shape, float(v))
    if v.shape not in (shape, (size,)):
        raise ValueError(f"{name} must be a number or have shape ({size},){batch}, got {v.shape}")
    first_bad(np.isnan(v), lambda i: f"{name} contains NaN entries")
    v = np.where(v <= -INF_BOUND, -np.inf, np.where(v >= INF_BOUND, np.inf, v))
    return np.broadcast_to(v, shape) if v.shape != shape else v


def first_bad(bad, message):
    """Raise ``ValueError(message(index))`` at the first true entry of ``bad``, (size,) or
    (B, size): for a batch the message names the member, ``"member b: ..."``."""
    if not bad.any():
        return
    where = np.argwhere(bad)[0]
    text = message(int(where[-1]))
    raise ValueError(text if bad.ndim == 1 else f"member {int(where[0])}: {text}")


def check_bounds(lc, uc, lv, uv):
    """``ValueError`` for a bound of ``validate_lp`` that is infinite the wrong way or crossed
    (over a leading batch axis, naming the first bad member)."""
    for lo, hi, what in ((lc, uc, "row"), (lv, uv, "variable")):
        first_bad((lo == np.inf) | (hi == -np.inf),
                   lambda i: f"{what} lower bounds must be < +inf and upper bounds > -inf")
        bad = lo > hi
        first_bad(bad, lambda i: f"{what} bounds cross at index {i}: lower "
                                  f"{lo[bad][0]:.6g} > upper {hi[bad][0]:.6g}")


def config(*, tol, eps_abs, eps_rel, eps_primal_infeasible, eps_dual_infeasible, reflection,
           adaptive_primal_weight, check_every, max_iter, ruiz_iters, pock_chambolle, rescale, seed,
           primal_weight, sparse_format) -> dict:
    """The method's options (those of `cvxkit.solvers.halpern_pdhg.halpern_pdhg`) checked, as
    the configuration dict of `scale_problem`, `make_data` and the `Settings`; ``ValueError``
    (or ``TypeError``) naming a bad one."""
    reflection = validate.nonnegative("reflection", reflection)
    if reflection > 1.0:
        raise ValueError(f"reflection must be in [0, 1], got {reflection!r}")
    validate.choice("sparse_format", sparse_format, ("auto", "segment", "bcoo"))
    eps = {k: validate.positive(k, tol if v is None else v, allow_zero=True)
           for k, v in (("eps_abs", eps_abs), ("eps_rel", eps_rel))}
    cfg = dict(eps, eps_pinf=validate.positive("eps_primal_infeasible", eps_primal_infeasible),
               eps_dinf=validate.positive("eps_dual_infeasible", eps_dual_infeasible),
               reflection=reflection, adapt_weight=validate.boolean("adaptive_primal_weight",
                                                                    adaptive_primal_weight),
               block=check_every, max_iter=max_iter,
               ruiz_iters=validate.integer("ruiz_iters", ruiz_iters, minimum=0),
               pock_chambolle=validate.boolean("pock_chambolle", pock_chambolle),
               rescale=validate.boolean("rescale", rescale), seed=seed,
               primal_weight=validate.positive("primal_weight", primal_weight, allow_none=True),
               sparse_format=sparse_format)
    if cfg["eps_abs"] == 0 and cfg["eps_rel"] == 0:
        raise ValueError("eps_abs and eps_rel cannot both be 0")
    return cfg


def validate_cost(c) -> np.ndarray:
    """``c`` as a finite float64 vector of shape (n,), n >= 1, else ``ValueError``."""
    c = validate.float_array("c", c, finite=True)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"c must have shape (n,) with n >= 1, got {c.shape}")
    return c


def validate_lp(c, K, lc, uc, lv, uv):
    """Check and normalize bound-form LP data; returns ``(c, K, lc, uc, lv, uv)`` as float64
    arrays (``K`` dense or scipy.sparse CSR, from any scipy.sparse format). Raises
    ``ValueError`` with the reason."""
    c = validate_cost(c)
    n = c.shape[0]
    K = validate.matrix("K", np.zeros((0, n)) if K is None else K)
    if K.ndim != 2 or K.shape[1] != n:
        raise ValueError(f"K must have shape (m, n) with n = {n}, got {K.shape}")
    if validate.is_sparse(K):
        K = K.tocsr()
    m = K.shape[0]
    lc, uc = bound_array("lc", lc, (m,), -np.inf), bound_array("uc", uc, (m,), np.inf)
    lv, uv = bound_array("lv", lv, (n,), -np.inf), bound_array("uv", uv, (n,), np.inf)
    check_bounds(lc, uc, lv, uv)
    return c, K, lc, uc, lv, uv


def data_scales(c, K, lc, uc, lv, uv):
    """The unscaled magnitudes of the tests (module docstring): ``(b, ||b / kappa||, ||c||,
    kappa, ||c||_inf, sigma_x)`` with ``b_i`` the largest finite bound of row ``i`` in magnitude
    and ``kappa_i`` the infinity norm of row ``i`` (1 for an empty row). Over a leading batch
    axis too (``K`` (B, m, n), or one (m, n) shared)."""
    b = _largest(lc, uc)
    if validate.is_sparse(K):
        kappa = abs(K).max(axis=1).toarray().ravel()
    else:
        kappa = np.abs(K).max(axis=-1, initial=0.0)
    kappa = np.where(kappa > 0, kappa, 1.0)
    top = lambda v: np.max(v, axis=-1, initial=0.0)  # noqa: E731
    xscale = np.maximum(top(_largest(lv, uv)), top(b / kappa))
    return (b, _scalar(_norm(b / kappa)), _scalar(_norm(c)), kappa, _scalar(top(np.abs(c))),
            _scalar(xscale))


def _abs_max(K, axis):
    """The largest magnitudes of ``K``'s rows (``axis=1``) or columns (``axis=0``), 1 where 0."""
    s = abs(K).max(axis=axis).toarray().ravel() if K.shape[axis] else np.zeros(K.shape[1 - axis])
    return np.where(s > 0, s, 1.0)


def _abs_sums(K, axis):
    s = np.asarray(abs(K).sum(axis=axis)).ravel()
    return np.where(s > 0, s, 1.0)


def scale_matrix(K, ruiz_iters=10, pock_chambolle=True):
    """The preconditioning of ``K`` (module docstring; it depends on ``K`` alone): returns
    ``(Ks, D, E)`` with ``Ks = diag(E) K diag(D)`` (CSR). Every step is row- or column-wise, so
    that a block-diagonal ``K`` gets each block's own scaling (bitwise: the same sums in the
    same order), which is how `scale_batch` scales a batch in one call."""
    import scipy.sparse as sp

    n = K.shape[1]
    Kc = sp.csc_matrix(K)
    # Ruiz (OSQP's) leaves rows with norms below MIN_SCALING alone and scales those above
    # MAX_SCALING as if they were MAX_SCALING: a row multiplied by 1e-9 would stay 1e-9 times
    # smaller than the others. Such rows go to unit infinity norm first; Ruiz equilibrates the
    # others, so that the result hardly depends on the scale of any row.
    kappa = _abs_max(Kc, 1)
    E0 = np.where((kappa < MIN_SCALING) | (kappa > MAX_SCALING), 1.0 / kappa, 1.0)
    Kc = sp.csc_matrix(sp.diags(E0) @ Kc)
    D0 = np.ones(n)
    if ruiz_iters > 0 and Kc.shape[0] > 0:
        s = ruiz_sparse(sp.csc_matrix((n, n)), np.zeros(n), Kc, iters=ruiz_iters)
        Ks, D, E = s.A, s.D * D0, s.E * E0
    else:
        Ks, D, E = Kc, D0, E0
    if pock_chambolle and Ks.shape[0] > 0:
        er = 1.0 / np.sqrt(_abs_sums(Ks, 1))
        dc = 1.0 / np.sqrt(_abs_sums(Ks, 0))
        Ks = sp.diags(er) @ Ks @ sp.diags(dc)
        D, E = D * dc, E * er
    return sp.csr_matrix(Ks), D, E


def rescaling(c, lc, uc, D, E):
    """The bound and cost divisors ``(beta_b, beta_c)`` of the bound-objective rescaling (module
    docstring; 1 for a zero vector), over a leading batch axis."""
    b = _largest(lc, uc) * E
    beta_b, beta_c = _norm(b), _norm(c * D)
    return np.where(beta_b > 0, beta_b, 1.0), np.where(beta_c > 0, beta_c, 1.0)


def precondition(c, K, lc, uc, lv, uv, ruiz_iters=10, pock_chambolle=True, rescale=True):
    """Scale the LP (see the module docstring); returns ``(Ks, D, E, beta_b, beta_c)`` with
    ``Ks = diag(E) K diag(D)`` (CSR) and the bound / cost divisors."""
    Ks, D, E = scale_matrix(K, ruiz_iters, pock_chambolle)
    beta_b, beta_c = rescaling(c, lc, uc, D, E) if rescale else (1.0, 1.0)
    return Ks, D, E, float(beta_b), float(beta_c)


#: operator_norm computes ||K||_2 by LAPACK's SVD up to this many entries, else by Lanczos
SMALL_NORM = 40_000


def operator_norm(K, seed=0) -> float:
    """``||K||_2`` (LAPACK for small matrices, ARPACK's Lanczos otherwise)."""
    m, n = K.shape
    if m == 0 or K.nnz == 0:
        return 0.0
    if min(m, n) <= 2 or m * n <= SMALL_NORM:
        return float(np.linalg.norm(K.toarray(), 2))
    from scipy.sparse.linalg import svds

    v0 = np.random.default_rng(seed).standard_normal(min(m, n))
    try:
        return float(svds(K, k=1, return_singular_vectors=False, tol=1e-5, v0=v0)[0])
    except Exception:  # noqa: BLE001 - ARPACK did not converge: power iteration
        v = v0 if n <= m else np.random.default_rng(seed).standard_normal(n)
        v = np.resize(v, n)
        est = 0.0
        for _ in range(500):
            w = K.T @ (K @ v)
            new = float(np.sqrt(np.linalg.norm(w)))
            v = w / max(np.linalg.norm(w), 1e-300)
            if abs(new - est) <= 1e-7 * new:
                break
            est = new
        return new * 1.001


#: products with matrices denser than this (fraction of entries) use dense arrays
DENSE_FRACTION = 0.25
#: and only below this many entries
DENSE_MAX = 4_000_000


class Scaled(NamedTuple):
    K: Any  # scipy CSR (scaled)
    c: Any
    lv: Any
    uv: Any
    lc: Any
    uc: Any
    D: Any
    E: Any
    beta_b: float
    beta_c: float
    eta: float
    omega0: float


def scale_problem(c, K, lc, uc, lv, uv, cfg) -> Scaled:
    """The preconditioned problem, its step size and initial primal weight (numpy)."""
    Ks, D, E, bb, bc = precondition(c, K, lc, uc, lv, uv, cfg["ruiz_iters"], cfg["pock_chambolle"],
                                    cfg["rescale"])
    return _scaled(c, lc, uc, lv, uv, Ks, D, E, bb, bc, operator_norm(Ks, cfg["seed"]), cfg)


def _scaled(c, lc, uc, lv, uv, Ks, D, E, bb, bc, normK, cfg) -> Scaled:
    """The `Scaled` problem from its scalings, over a leading batch axis (the member's numbers
    ``bb``, ``bc``, ``normK`` (B,)) or for one LP (floats)."""
    b1, c1 = np.asarray(bb)[..., None], np.asarray(bc)[..., None]
    xs = b1 * D
    cs = c * xs / (b1 * c1)  # = D c / beta_c
    lvs, uvs = lv / xs, uv / xs
    lcs, ucs = lc * E / b1, uc * E / b1
    eta = np.where(normK > 0, STEP_FRACTION / np.where(normK > 0, normK, 1.0), 1.0)
    cn, bn = _norm(cs), _norm(_largest(lcs, ucs))
    ok = (cn > 1e-10) & (bn > 1e-10)
    omega0 = np.where(ok, cn / np.where(ok, bn, 1.0), 1.0)
    if cfg["primal_weight"]:
        omega0 = np.full(np.shape(cn), float(cfg["primal_weight"]))
    return Scaled(Ks, cs, lvs, uvs, lcs, ucs, D, E, bb, bc, _scalar(eta), _scalar(omega0))


def _block_diagonal(K):
    """The dense stack ``K`` (B, m, n) as one block-diagonal CSC matrix (B m, B n) of its
    nonzeros (each block's entries stored as ``scipy.sparse.csc_matrix`` stores the member's)."""
    import scipy.sparse as sp

    B, m, n = K.shape
    Kt = np.swapaxes(K, 1, 2)  # the members' columns, one after the other
    nz = Kt != 0
    rows = np.broadcast_to(np.arange(B)[:, None, None] * m + np.arange(m), Kt.shape)
    indptr = np.concatenate([[0], np.cumsum(nz.sum(axis=-1).ravel())])
    return sp.csc_matrix((Kt[nz], rows[nz], indptr), shape=(B * m, B * n))


def scale_batch(c, K, lc, uc, lv, uv, cfg) -> Scaled:
    """`scale_problem` of B LPs of one shape at once: ``c``, the bounds (B, ·); ``K`` a dense
    stack (B, m, n) or one (m, n) matrix (dense or scipy.sparse) shared by all. Returns one
    `Scaled` with a leading batch axis on every field but ``K``: the scaled dense stack (B, m,
    n), or the shared matrix's `scale_problem` CSR. The numbers are those of `scale_problem`
    member by member: K's part (`scale_matrix`) is made once, on the block-diagonal matrix of
    the members or on the shared K, the rest over the batch axis."""
    B, n = c.shape
    ruiz, pc, seed = cfg["ruiz_iters"], cfg["pock_chambolle"], cfg["seed"]
    if validate.is_sparse(K) or K.ndim == 2:
        Ks, D, E = scale_matrix(K, ruiz, pc)
        D, E = np.broadcast_to(D, (B, n)), np.broadcast_to(E, (B, K.shape[0]))
        normK = np.full(B, operator_norm(Ks, seed))
    else:
        m = K.shape[1]
        Kb, D, E = scale_matrix(_block_diagonal(K), ruiz, pc)
        D, E = D.reshape(B, n), E.reshape(B, m)
        rows = np.repeat(np.arange(B * m), np.diff(Kb.indptr))  # row b m + i is (b, i)
        Ks = np.zeros(K.shape)
        Ks.reshape(-1)[rows * n + Kb.indices % n] = Kb.data
        if m == 0:
            normK = np.zeros(B)
        elif min(m, n) <= 2 or m * n <= SMALL_NORM:  # operator_norm's LAPACK branch, batched
            normK = np.linalg.svd(Ks, compute_uv=False).max(axis=-1)
        else:  # each block as `scale_problem`'s CSR (its entries in the same order)
            normK = np.array([operator_norm(Kb[i * m:(i + 1) * m, i * n:(i + 1) * n], seed)
                              for i in range(B)])
    bb, bc = rescaling(c, lc, uc, D, E) if cfg["rescale"] else (np.ones(B), np.ones(B))
    return _scaled(c, lc, uc, lv, uv, Ks, D, E, bb, bc, normK, cfg)


class RowSparse:
    """A sparse matrix for JAX as its nonzeros in row order: ``data``, column ``cols`` and row
    ``rows`` indices (static ``shape``). ``M @ v`` is ``segment_sum(data * v[cols], rows)`` with
    sorted segments: on CPU about 4x faster than a BCOO product (one gather, one sorted
    reduction, no scatter). A pytree (registered on first use)."""

    _registered = False

    def __init__(self, data, cols, rows, shape):
        self.data, self.cols, self.rows, self.shape = data, cols, rows, tuple(shape)

    def __matmul__(self, v):
        import jax

        return jax.ops.segment_sum(self.data * v[self.cols], self.rows,
                                   num_segments=self.shape[0], indices_are_sorted=True)

    @classmethod
    def from_scipy(cls, bk: Backend, M):
        import jax

        if not cls._registered:
            jax.tree_util.register_pytree_node(
                cls, lambda a: ((a.data, a.cols, a.rows), a.shape),
                lambda shape, leaves: cls(*leaves, shape))
            cls._registered = True
        M = M.tocsr()
        M.sort_indices()
        jnp = bk.xp
        rows = np.repeat(np.arange(M.shape[0], dtype=np.int32), np.diff(M.indptr))
        return cls(jnp.asarray(M.data, dtype=bk.dtype), jnp.asarray(M.indices, dtype=jnp.int32),
                   jnp.asarray(rows), M.shape)


def _matrices(bk: Backend, Ks, mesh, sparse_format="auto"):
    """``(K, K^T)`` for the back end: dense if dense enough, else CSR (numpy), or on JAX
    `RowSparse` (``sparse_format="segment"``; the default on CPU) or BCOO (``"bcoo"``; the
    default on accelerators, where it maps to cuSPARSE)."""
    import scipy.sparse as sp

    m, n = Ks.shape
    dense = m * n <= DENSE_MAX and Ks.nnz >= DENSE_FRACTION * m * n
    if bk.name == "numpy":
        if dense:
            A = Ks.toarray().astype(bk.dtype)
            return A, np.ascontiguousarray(A.T)
        return (kkt.fast_csr(Ks.astype(bk.dtype)), kkt.fast_csr(sp.csr_matrix(Ks.T).astype(bk.dtype)))
    from jax.experimental import sparse as jsparse

    jnp = bk.xp
    if dense:
        K, Kt = jnp.asarray(Ks.toarray(), dtype=bk.dtype), jnp.asarray(Ks.T.toarray(), dtype=bk.dtype)
    else:
        if sparse_format == "auto":
            sparse_format = "segment" if bk._jax.default_backend() == "cpu" else "bcoo"
        if sparse_format == "segment":
            K, Kt = RowSparse.from_scipy(bk, Ks), RowSparse.from_scipy(bk, sp.csr_matrix(Ks.T))
        else:
            K = jsparse.BCOO.from_scipy_sparse(Ks.astype(bk.dtype)).sort_indices()
            Kt = jsparse.BCOO.from_scipy_sparse(sp.csr_matrix(Ks.T).astype(bk.dtype)).sort_indices()
    if mesh is not None:
        K, Kt = _shard_rows(bk, K, mesh), _shard_rows(bk, Kt, mesh)
    return K, Kt


def _shard_rows(bk: Backend, M, mesh):
    """Place ``M`` on ``mesh`` split by rows (a BCOO: its nonzeros in row-sorted order)."""
    jax = bk._jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    axis = mesh.axis_names[0]
    if isinstance(M, RowSparse):  # nonzeros in row order: split them in contiguous blocks
        pad = (-M.data.shape[0]) % mesh.devices.size
        leaves = [M.data, M.cols, M.rows]
        if pad:  # zero entries in the last row keep the product unchanged
            leaves = [bk.xp.concatenate([v, bk.xp.broadcast_to(v[-1:] * (0 if i == 0 else 1), (pad,))])
                      for i, v in enumerate(leaves)]
        sh = NamedSharding(mesh, P(axis))
        return RowSparse(*[jax.device_put(v, sh) for v in leaves], M.shape)
    if hasattr(M, "indices"):  # BCOO with sorted indices: nonzeros are in row blocks
        ndev = mesh.devices.size
        nnz = M.data.shape[0]
        pad = (-nnz) % ndev
        data, idx = M.data, M.indices
        if pad:  # zero entries at the last position keep the product unchanged
            data = bk.xp.concatenate([data, bk.xp.zeros(pad, data.dtype)])
            idx = bk.xp.concatenate([idx, bk.xp.broadcast_to(idx[-1:], (pad, 2))])
        from jax.experimental import sparse as jsparse

        data = jax.device_put(data, NamedSharding(mesh, P(axis)))
        idx = jax.device_put(idx, NamedSharding(mesh, P(axis, None)))
        return jsparse.BCOO((data, idx), shape=M.shape, indices_sorted=True)
    rows = M.shape[0]
    if rows % mesh.devices.size == 0:
        return jax.device_put(M, NamedSharding(mesh, P(axis, None)))
    return jax.device_put(M, NamedSharding(mesh, P()))


def matrices(bk: Backend, Ks, mesh=None, sparse_format="auto"):
    """``(K, K^T, |K|, |K|^T)`` of the scaled CSR ``Ks`` on the back end (see `_matrices`)."""
    return (*_matrices(bk, Ks, mesh, sparse_format), *_matrices(bk, abs(Ks), mesh, sparse_format))


def unscale(sc: Scaled, xh, yh):
    """The user's ``(x, y)`` (float64) of the scaled ``(xh, yh)``: ``beta_b D xh``,
    ``beta_c E yh`` (over a leading batch axis too)."""
    return (np.asarray(sc.beta_b)[..., None] * sc.D * xh.astype(np.float64),
            np.asarray(sc.beta_c)[..., None] * sc.E * yh.astype(np.float64))


def unit_scaled(c, K, lc, uc, lv, uv) -> Scaled:
    """The LP as a `Scaled` problem with unit scaling (its own data; over a leading batch axis
    too), for the checks on the user's data."""
    one = _scalar(np.ones(c.shape[:-1]))
    return Scaled(K, c, lv, uv, lc, uc, np.ones(c.shape), np.ones(lc.shape), one, one, one, one)


def make_data(bk: Backend, c, K_user, lc, uc, lv, uv, sc: Scaled, cfg, mesh=None, mats=None) -> Data:
    """The `Data` of the scaled problem ``sc`` of the LP ``(c, K_user, ...)`` on back end ``bk``.
    Over a leading batch axis too (``sc`` of `scale_batch`: a member's numbers (B,); the
    `Settings` stay numbers), with the matrices ``mats`` (``K, K^T, |K|, |K|^T``) given."""
    if mats is None:
        mats = matrices(bk, sc.K, mesh, cfg["sparse_format"])
    f = bk.asarray
    _, bnorm, cnorm, kappa, cinf, xscale = data_scales(c, K_user, lc, uc, lv, uv)
    bb, bc = np.asarray(sc.beta_b)[..., None], np.asarray(sc.beta_c)[..., None]
    xs, ys = bb * sc.D, bc * sc.E
    kxs, kys = bb / sc.E, bc / sc.D
    mask = (lambda v: bk.xp.asarray(v)) if bk.name == "jax" else np.asarray
    d = Data(*mats, f(sc.c), f(sc.lv), f(sc.uv), f(sc.lc), f(sc.uc), f(sc.eta), f(xs), f(ys), f(kxs),
             f(kys), f(c), f(lv), f(uv), f(lc), f(uc), mask(np.isfinite(lv)), mask(np.isfinite(uv)),
             mask(np.isfinite(lc)), mask(np.isfinite(uc)), f(bnorm), f(cnorm),
             f(np.broadcast_to(kappa, np.shape(lc))), f(cinf), f(xscale), settings(bk, cfg))
    if mesh is not None:
        shard = {name: shard_vector(bk, getattr(d, name), mesh) for name in Data._fields
                 if name not in ("K", "Kt", "Kabs", "Ktabs", "settings") and np.ndim(getattr(d, name)) == 1}
        d = d._replace(**shard)
    return d
