"""The one input-validation layer shared by the problem classes and solvers.

Every user array and option goes through these functions, which turn it into float64 data or
raise a ``ValueError`` (``TypeError`` for an option of the wrong type) that names the argument and
says what is wrong -- never a crash deep inside numpy, scipy, POT or JAX.

* `float_array`: dense numeric arrays (lists, tuples, numpy arrays, JAX arrays; a scipy.sparse
  input is densified). ``None``, complex, object, ragged, empty (on request) and non-finite
  (on request) input is refused.
* `matrix`: a 2-D matrix that may stay sparse: every scipy.sparse format (csr, csc, coo, lil,
  dok, dia, bsr; ``*_matrix`` and ``*_array``) becomes a float64 ``csc_matrix``.
* `symmetric`: a dense square symmetric matrix (symmetrized); `warm_array`: one array of a
  warm start.
* `positive`, `nonnegative`, `integer`, `boolean`, `choice`: option checks. A wrong type raises
  `ArgumentTypeError`, which is both a ``TypeError`` and a ``ValueError``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


class ArgumentTypeError(TypeError, ValueError):
    """An argument or option of the wrong type: both a ``TypeError`` and a ``ValueError``, so
    that code catching either sees it."""


def is_sparse(M) -> bool:
    """True for any scipy.sparse matrix or array (scipy is imported only if already loaded)."""
    import sys

    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(M)


def reject_complex(name: str, v) -> None:
    """``ValueError`` if ``v`` holds complex numbers (a float conversion would drop their
    imaginary parts silently)."""
    dtype = getattr(v, "dtype", None)
    if dtype is not None:
        if np.issubdtype(np.dtype(dtype), np.complexfloating):
            raise ValueError(f"{name} must be real, got complex entries")
        return
    try:
        cplx = np.iscomplexobj(v)
    except (TypeError, ValueError):  # ragged or odd input: the float conversion reports it
        cplx = False
    if cplx or _has_complex(v):
        raise ValueError(f"{name} must be real, got complex entries")


def _has_complex(v, depth: int = 0) -> bool:
    if isinstance(v, complex):
        return True
    if isinstance(v, (list, tuple)) and depth < 4:
        return any(_has_complex(e, depth + 1) for e in v[:1000])
    return False


def _has_text(v, depth: int = 0) -> bool:
    if isinstance(v, (str, bytes)):
        return True
    if isinstance(v, (list, tuple)) and depth < 4:
        return any(_has_text(e, depth + 1) for e in v[:1000])
    return False


def float_array(name: str, v, *, ndim: int | None = None, nonempty: bool = False,
                finite: bool = False, copy: bool = False) -> np.ndarray:
    """``v`` as a float64 ndarray, else ``ValueError`` naming ``name``.

    Args:
        ndim: required number of dimensions (``None``: any).
        nonempty: refuse an array without entries.
        finite: refuse NaN and infinite entries.
        copy: always return a new array (the caller may write into it).
    """
    if v is None:
        raise ValueError(f"{name} is required, got None")
    if is_sparse(v):  # before the dict test: scipy's dok format is a dict
        reject_complex(name, v)
        v = v.toarray()
    if isinstance(v, (str, bytes, dict, set)):
        raise ValueError(f"{name} must be a numeric array, got {type(v).__name__}")
    reject_complex(name, v)
    if isinstance(v, (list, tuple)) and _has_text(v):
        raise ValueError(f"{name} must be a numeric array, got text entries")
    dtype = getattr(v, "dtype", None)
    if dtype is not None and not (np.issubdtype(np.dtype(dtype), np.number)
                                  or np.dtype(dtype) == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {dtype}")
    try:
        a = np.array(v, dtype=np.float64) if copy else np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as e:
        reason = "a ragged nested list" if "inhomogeneous" in str(e) or "sequence" in str(e) \
            else str(e)
        raise ValueError(f"{name} must be a numeric array, got {reason}") from None
    if (ndim is not None and a.ndim != ndim) or (nonempty and a.size == 0):
        what = f"{ndim}-D array" if ndim is not None else "array"
        raise ValueError(f"{name} must be a {'non-empty ' if nonempty else ''}{what}, "
                         f"got shape {a.shape}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return a


def matrix(name: str, M, *, finite: bool = True, nonempty: bool = False, sparse: bool = True):
    """A 2-D float64 matrix: dense ``ndarray``, or (``sparse=True``) a ``scipy.sparse.csc_matrix``
    for input in any scipy.sparse format; ``ValueError`` naming ``name`` otherwise.

    ``sparse=False`` densifies sparse input. Batched (3-D) dense input is left to the caller:
    this function checks 2-D only when the input is sparse.
    """
    if is_sparse(M):
        import scipy.sparse as sp

        reject_complex(name, M)
        if not np.issubdtype(M.dtype, np.number) and M.dtype != np.bool_:
            raise ValueError(f"{name} must be numeric, got dtype {M.dtype}")
        if nonempty and (M.shape[0] == 0 or M.shape[1] == 0):
            raise ValueError(f"{name} must be a non-empty matrix, got shape {M.shape}")
        C = sp.csc_matrix(M, dtype=np.float64)  # every format (dok, lil, dia, bsr, coo, ...)
        C.sum_duplicates()
        if finite and not np.isfinite(C.data).all():
            raise ValueError(f"{name} contains NaN or infinite entries")
        return C if sparse else C.toarray()
    return float_array(name, M, finite=finite, nonempty=nonempty)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def positive(name: str, v, *, upper: float | None = None, allow_zero: bool = False,
             allow_inf: bool = False, allow_none: bool = False):
    """``v`` as a float in ``(0, upper)`` (``[0, upper)`` with ``allow_zero``); ``None`` passes
    through with ``allow_none``. ``TypeError`` for a non-number, ``ValueError`` out of range."""
    if v is None and allow_none:
        return None
    if not _real(v):
        raise ArgumentTypeError(f"{name} must be a number, got {type(v).__name__} {v!r}")
    v = float(v)
    ok = (v >= 0 if allow_zero else v > 0) and not math.isnan(v)
    ok = ok and (math.isfinite(v) or allow_inf) and (upper is None or v < upper)
    if not ok:
        lo = "[0" if allow_zero else "(0"
        hi = f"{upper})" if upper is not None else ("inf]" if allow_inf else "inf)")
        raise ValueError(f"{name} must lie in {lo}, {hi}, got {v!r}")
    return v


def nonnegative(name: str, v, **kw):
    """`positive` with zero allowed."""
    return positive(name, v, allow_zero=True, **kw)


def integer(name: str, v, *, minimum: int = 1, allow_none: bool = False):
    """``v`` as an int ``>= minimum`` (``TypeError`` for non-integers such as 2.5 or True)."""
    if v is None and allow_none:
        return None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def boolean(name: str, v) -> bool:
    """``v`` if it is a bool (numpy bools too), else ``TypeError``."""
    if not isinstance(v, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {type(v).__name__} {v!r}")
    return bool(v)


def choice(name: str, v, choices):
    """``v`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {v!r}")
    return v


def warm_array(expected: str, name: str, v, shape) -> np.ndarray:
    """One array of a ``warm_start``: finite, of shape ``shape``, as a new float64 array; else
    ``ValueError`` that starts with ``expected`` (what the method accepts) and says what is wrong."""
    try:
        a = float_array(name, v, finite=True, copy=True)
    except ValueError as e:
        raise ValueError(f"{expected}; {e}") from None
    if a.shape != tuple(shape):
        raise ValueError(f"{expected}; got {name} of shape {a.shape}")
    return a


def warm_pair(warm_start, names: tuple[str, str], sizes: tuple[int, int], *,
              second_optional: bool = False):
    """``(first, second, result)`` from a ``warm_start`` that is a `Result` of the same problem
    (``first`` is its ``x``, ``second`` its ``info[names[1]]``; ``result`` the Result itself, whose
    other fields a method may reuse) or a pair of arrays (``result`` None). Both arrays are
    finite, float64, of shapes ``(sizes[0],)`` and ``(sizes[1],)``; with ``second_optional`` the
    second may be None (zeros). Anything else raises ``ValueError`` saying what is expected."""
    from cvxkit.solvers.result import Result

    (a, b), (n, m) = names, sizes
    expected = (f"warm_start must be a Result of this problem or a pair ({a}, {b}) with {a} of "
                f"shape ({n},) and {b} of shape ({m},)" + (" or None" if second_optional else ""))
    result = None
    if isinstance(warm_start, Result):
        result = warm_start
        info = warm_start.info if isinstance(warm_start.info, dict) else {}
        if info.get(b) is None:
            raise ValueError(f"{expected}; got a Result without info[{b!r}] (method "
                             f"{warm_start.method or '?'})")
        pair = (warm_start.x, info[b])
    elif isinstance(warm_start, (tuple, list)) and len(warm_start) == 2:
        pair = tuple(warm_start)
    else:
        raise ValueError(f"{expected}; got {type(warm_start).__name__}")
    second = (np.zeros(m) if pair[1] is None and second_optional
              else warm_array(expected, f"warm_start {b}", pair[1], (m,)))
    return warm_array(expected, f"warm_start {a}", pair[0], (n,)), second, result


def symmetric(name: str, M, n: int | None = None, floor: float = 1.0) -> np.ndarray:
    """``M`` (dense, or any scipy.sparse format: densified) as a float64 square (n, n) finite
    real array, symmetrized; ``ValueError`` naming ``name`` otherwise.

    Symmetry is required to ``1e-12 * max(floor, max|M|)``.
    """
    M = matrix(name, M, finite=False, sparse=False)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.size == 0:
        raise ValueError(f"{name} must be a non-empty square (n, n) matrix, got shape {M.shape}")
    if n is not None and M.shape != (n, n):
        raise ValueError(f"{name} must have shape {(n, n)}, got {M.shape}")
    if not np.isfinite(M).all():
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    asym = np.abs(M - M.T).max()
    if asym > 1e-12 * max(floor, np.abs(M).max()):
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}.T| = {asym:.3g}")
    return M / 2 + M.T / 2  # no overflow near the largest float
