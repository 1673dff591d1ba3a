"""cvxkit: convex and constrained optimization solvers, checked against CVXPY, on numpy and JAX.

    from cvxkit.problems import OptimalTransport
    res = OptimalTransport(a, b, C, reg=0.05).solve()
    OptimalTransport(a, b, C, reg=0.05).check(res)
"""
__version__ = "0.1.0"

from cvxkit.solvers.result import Result, Status  # noqa: E402  (light: numpy only)

__all__ = ["Result", "Status", "__version__"]
