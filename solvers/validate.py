"""Input checks shared by the problem classes and solvers: one place that turns user data into
float64 arrays and raises a clear ``ValueError`` (never a crash deep inside numpy)."""
from __future__ import annotations

import numpy as np


def reject_complex(name: str, v) -> None:
    """``ValueError`` if ``v`` holds complex numbers (a float conversion would drop their
    imaginary parts silently)."""
    if np.iscomplexobj(v):
        raise ValueError(f"{name} must be real, got complex entries")


def float_array(name: str, v, *, ndim: int | None = None, nonempty: bool = False,
                finite: bool = False, copy: bool = False) -> np.ndarray:
    """``v`` as a float64 array, else ``ValueError`` naming ``name``.

    Args:
        ndim: required number of dimensions (``None``: any).
        nonempty: refuse an array without entries.
        finite: refuse NaN and infinite entries.
        copy: always return a new array (the caller may write into it).
    """
    reject_complex(name, v)
    try:
        a = np.array(v, dtype=np.float64) if copy else np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array: {e}") from None
    if (ndim is not None and a.ndim != ndim) or (nonempty and a.size == 0):
        what = f"{ndim}-D array" if ndim is not None else "array"
        raise ValueError(f"{name} must be a {'non-empty ' if nonempty else ''}{what}, "
                         f"got shape {a.shape}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return a
