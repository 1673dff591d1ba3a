"""cvxkit: convex and constrained optimization solvers, checked against CVXPY, on numpy and JAX.

    from cvxkit.problems import OptimalTransport
    res = OptimalTransport(a, b, C, reg=0.05).solve()
    OptimalTransport(a, b, C, reg=0.05).check(res)
"""
__version__ = "0.1.0"

from cvxkit.solvers.result import Result, Status  # noqa: E402  (light: numpy only)

__all__ = ["CvxpySolver", "Result", "Status", "__version__", "solve"]

#: names loaded on first use, so that ``import cvxkit`` does not import CVXPY
_LAZY = {"CvxpySolver": "cvxkit.problems.cvxpy_solver", "solve": "cvxkit.problems.cvxpy_solver"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cvxkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
