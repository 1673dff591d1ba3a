r"""Equality-constrained test problems of Hock & Schittkowski, with their published optima.

Source: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming Codes*, Lecture
Notes in Economics and Mathematical Systems 187, Springer, 1981 (problem numbers, objective,
constraints, standard starting point $x^0$ and optimal value $f^*$ as published there).

Every problem here is $\min f(x)$ s.t. $c(x) = 0$. Problems 60, 63, 80 and 81 also have simple
bounds in the original, which are **inactive** at the published solution; they are dropped here
(the method of `cvxkit.solvers.al_sketch` handles equalities only), which leaves the
local solution and $f^*$ unchanged. HS47 is left out: from its standard start, SLSQP and
trust-constr both converge to a feasible point with $f = -0.0267 < f^* = 0$ (its cubic term makes
the published $f^*$ only a local value), so "the known optimum" is not what a local method
should be expected to reach from $x^0$. Every entry was cross-checked by solving it with scipy's
SLSQP and trust-constr from $x^0$ (``benchmarks/nlp.py --verify``).

    from cvxkit.problems.hock_schittkowski import hs_problem, HS_NUMBERS
    prob = hs_problem(28)            # a NonlinearProgram with known_optimum = 0
    res = prob.solve(tol=1e-8)
    prob.check(res)

The functions are written once over an array namespace ``xp`` (numpy or ``jax.numpy``); the
`NonlinearProgram` gets the ``jax.numpy`` version, whose derivatives come from JAX autodiff.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

_S2 = math.sqrt(2.0)


class HSData(NamedTuple):
    """One Hock–Schittkowski problem: ``f(x, xp)``, ``c(x, xp)`` and its published data."""

    number: int
    f: Callable
    c: Callable
    x0: tuple
    f_star: float
    x_star: tuple | None
    note: str


def _hs(number, f, c, x0, f_star, x_star=None, note=""):
    return HSData(number, f, c, tuple(float(v) for v in x0), float(f_star),
                  None if x_star is None else tuple(float(v) for v in x_star), note)


def _stack(xp, *parts):
    return xp.stack(parts)


_a56 = math.asin(math.sqrt(1 / 4.2))
_b56 = math.asin(math.sqrt(5 / 7.2))

_PROBLEMS = [
    _hs(6, lambda x, xp: (1 - x[0]) ** 2,
        lambda x, xp: _stack(xp, 10 * (x[1] - x[0] ** 2)),
        (-1.2, 1.0), 0.0, (1.0, 1.0)),
    _hs(7, lambda x, xp: xp.log(1 + x[0] ** 2) - x[1],
        lambda x, xp: _stack(xp, (1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4),
        (2.0, 2.0), -math.sqrt(3), (0.0, math.sqrt(3))),
    _hs(8, lambda x, xp: -1.0 + 0 * x[0],
        lambda x, xp: _stack(xp, x[0] ** 2 + x[1] ** 2 - 25, x[0] * x[1] - 9),
        (2.0, 1.0), -1.0, None, "constant objective: a feasibility problem"),
    _hs(9, lambda x, xp: xp.sin(math.pi * x[0] / 12) * xp.cos(math.pi * x[1] / 16),
        lambda x, xp: _stack(xp, 4 * x[0] - 3 * x[1]),
        (0.0, 0.0), -0.5, (-3.0, -4.0), "periodic: solutions (12k-3, 16k-4)"),
    _hs(26, lambda x, xp: (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4,
        lambda x, xp: _stack(xp, (1 + x[1] ** 2) * x[0] + x[2] ** 4 - 3),
        (-2.6, 2.0, 2.0), 0.0, (1.0, 1.0, 1.0), "degenerate: singular Hessian at x*"),
    _hs(27, lambda x, xp: 0.01 * (x[0] - 1) ** 2 + (x[1] - x[0] ** 2) ** 2,
        lambda x, xp: _stack(xp, x[0] + x[2] ** 2 + 1),
        (2.0, 2.0, 2.0), 0.04, (-1.0, 1.0, 0.0)),
    _hs(28, lambda x, xp: (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2,
        lambda x, xp: _stack(xp, x[0] + 2 * x[1] + 3 * x[2] - 1),
        (-4.0, 1.0, 1.0), 0.0, (0.5, -0.5, 0.5), "convex QP"),
    _hs(39, lambda x, xp: -x[0],
        lambda x, xp: _stack(xp, x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2),
        (2.0, 2.0, 2.0, 2.0), -1.0, (1.0, 1.0, 0.0, 0.0)),
    _hs(40, lambda x, xp: -x[0] * x[1] * x[2] * x[3],
        lambda x, xp: _stack(xp, x[0] ** 3 + x[1] ** 2 - 1, x[0] ** 2 * x[3] - x[2],
                             x[3] ** 2 - x[1]),
        (0.8, 0.8, 0.8, 0.8), -0.25,
        (2 ** (-1 / 3), 2 ** (-1 / 2), 2 ** (-11 / 12), 2 ** (-1 / 4))),
    _hs(42, lambda x, xp: (x[0] - 1) ** 2 + (x[1] - 2) ** 2 + (x[2] - 3) ** 2 + (x[3] - 4) ** 2,
        lambda x, xp: _stack(xp, x[0] - 2, x[2] ** 2 + x[3] ** 2 - 2),
        (1.0, 1.0, 1.0, 1.0), 28 - 10 * _S2, (2.0, 2.0, 0.6 * _S2, 0.8 * _S2)),
    _hs(46, lambda x, xp: ((x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4
                           + (x[4] - 1) ** 6),
        lambda x, xp: _stack(xp, x[0] ** 2 * x[3] + xp.sin(x[3] - x[4]) - 1,
                             x[1] + x[2] ** 4 * x[3] ** 2 - 2),
        (0.5 * _S2, 1.75, 0.5, 2.0, 2.0), 0.0, (1.0, 1.0, 1.0, 1.0, 1.0),
        "degenerate: singular Hessian at x*"),
    _hs(48, lambda x, xp: (x[0] - 1) ** 2 + (x[1] - x[2]) ** 2 + (x[3] - x[4]) ** 2,
        lambda x, xp: _stack(xp, x[0] + x[1] + x[2] + x[3] + x[4] - 5,
                             x[2] - 2 * (x[3] + x[4]) + 3),
        (3.0, 5.0, -3.0, 2.0, -2.0), 0.0, (1.0, 1.0, 1.0, 1.0, 1.0), "convex QP"),
    _hs(49, lambda x, xp: ((x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4
                           + (x[4] - 1) ** 6),
        lambda x, xp: _stack(xp, x[0] + x[1] + x[2] + 4 * x[3] - 7, x[2] + 5 * x[4] - 6),
        (10.0, 7.0, 2.0, -3.0, 0.8), 0.0, (1.0, 1.0, 1.0, 1.0, 1.0),
        "degenerate: singular Hessian at x*"),
    _hs(50, lambda x, xp: ((x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4
                           + (x[3] - x[4]) ** 2),
        lambda x, xp: _stack(xp, x[0] + 2 * x[1] + 3 * x[2] - 6, x[1] + 2 * x[2] + 3 * x[3] - 6,
                             x[2] + 2 * x[3] + 3 * x[4] - 6),
        (35.0, -31.0, 11.0, 5.0, -5.0), 0.0, (1.0, 1.0, 1.0, 1.0, 1.0)),
    _hs(51, lambda x, xp: ((x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2
                           + (x[4] - 1) ** 2),
        lambda x, xp: _stack(xp, x[0] + 3 * x[1] - 4, x[2] + x[3] - 2 * x[4], x[1] - x[4]),
        (2.5, 0.5, 2.0, -1.0, 0.5), 0.0, (1.0, 1.0, 1.0, 1.0, 1.0), "convex QP"),
    _hs(52, lambda x, xp: ((4 * x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2
                           + (x[4] - 1) ** 2),
        lambda x, xp: _stack(xp, x[0] + 3 * x[1], x[2] + x[3] - 2 * x[4], x[1] - x[4]),
        (2.0, 2.0, 2.0, 2.0, 2.0), 1859 / 349,
        (-33 / 349, 11 / 349, 180 / 349, -158 / 349, 11 / 349), "convex QP"),
    _hs(56, lambda x, xp: -x[0] * x[1] * x[2],
        lambda x, xp: _stack(xp, x[0] - 4.2 * xp.sin(x[3]) ** 2, x[1] - 4.2 * xp.sin(x[4]) ** 2,
                             x[2] - 4.2 * xp.sin(x[5]) ** 2,
                             x[0] + 2 * x[1] + 2 * x[2] - 7.2 * xp.sin(x[6]) ** 2),
        (1.0, 1.0, 1.0, _a56, _a56, _a56, _b56), -3.456, None),
    _hs(60, lambda x, xp: (x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4,
        lambda x, xp: _stack(xp, x[0] * (1 + x[1] ** 2) + x[2] ** 4 - 4 - 3 * _S2),
        (2.0, 2.0, 2.0), 0.03256820025, None, "bounds -10 <= x <= 10 inactive at x*, dropped"),
    _hs(61, lambda x, xp: (4 * x[0] ** 2 + 2 * x[1] ** 2 + 2 * x[2] ** 2 - 33 * x[0] + 16 * x[1]
                           - 24 * x[2]),
        lambda x, xp: _stack(xp, 3 * x[0] - 2 * x[1] ** 2 - 7, 4 * x[0] - x[2] ** 2 - 11),
        (0.0, 0.0, 0.0), -143.6461422, None),
    _hs(63, lambda x, xp: (1000 - x[0] ** 2 - 2 * x[1] ** 2 - x[2] ** 2 - x[0] * x[1]
                           - x[0] * x[2]),
        lambda x, xp: _stack(xp, 8 * x[0] + 14 * x[1] + 7 * x[2] - 56,
                             x[0] ** 2 + x[1] ** 2 + x[2] ** 2 - 25),
        (2.0, 2.0, 2.0), 961.7151721, None, "bounds x >= 0 inactive at x*, dropped"),
    _hs(77, lambda x, xp: ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[2] - 1) ** 2
                           + (x[3] - 1) ** 4 + (x[4] - 1) ** 6),
        lambda x, xp: _stack(xp, x[0] ** 2 * x[3] + xp.sin(x[3] - x[4]) - 2 * _S2,
                             x[1] + x[2] ** 4 * x[3] ** 2 - 8 - _S2),
        (2.0, 2.0, 2.0, 2.0, 2.0), 0.24150513, None),
    _hs(78, lambda x, xp: x[0] * x[1] * x[2] * x[3] * x[4],
        lambda x, xp: _stack(xp, x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + x[3] ** 2 + x[4] ** 2 - 10,
                             x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1),
        (-2.0, 1.5, 2.0, -1.0, -1.0), -2.91970041, None),
    _hs(79, lambda x, xp: ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2
                           + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 4),
        lambda x, xp: _stack(xp, x[0] + x[1] ** 2 + x[2] ** 3 - 2 - 3 * _S2,
                             x[1] - x[2] ** 2 + x[3] + 2 - 2 * _S2, x[0] * x[4] - 2),
        (2.0, 2.0, 2.0, 2.0, 2.0), 0.0787768209, None),
    _hs(80, lambda x, xp: xp.exp(x[0] * x[1] * x[2] * x[3] * x[4]),
        lambda x, xp: _stack(xp, x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + x[3] ** 2 + x[4] ** 2 - 10,
                             x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1),
        (-2.0, 2.0, 2.0, -1.0, -1.0), 0.0539498478, None,
        "bounds |x1|,|x2| <= 2.3, |x3..5| <= 3.2 inactive at x*, dropped"),
    _hs(81, lambda x, xp: (xp.exp(x[0] * x[1] * x[2] * x[3] * x[4])
                           - 0.5 * (x[0] ** 3 + x[1] ** 3 + 1) ** 2),
        lambda x, xp: _stack(xp, x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + x[3] ** 2 + x[4] ** 2 - 10,
                             x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1),
        (-2.0, 2.0, 2.0, -1.0, -1.0), 0.0539498478, None,
        "bounds |x1|,|x2| <= 2.3, |x3..5| <= 3.2 inactive at x*, dropped"),
]

HS_DATA: dict[int, HSData] = {p.number: p for p in _PROBLEMS}

#: the problem numbers available from `hs_problem`
HS_NUMBERS: tuple[int, ...] = tuple(sorted(HS_DATA))


def hs_numpy(number: int) -> tuple[Callable, Callable, np.ndarray]:
    """``(f, c, x0)`` of problem ``number`` as plain numpy callables (for scipy comparisons)."""
    d = _get(number)
    return (lambda x: float(d.f(np.asarray(x), np)), lambda x: np.asarray(d.c(np.asarray(x), np)),
            np.array(d.x0))


def _get(number) -> HSData:
    if number not in HS_DATA:
        raise ValueError(f"no Hock-Schittkowski problem {number!r} here; valid choices: "
                         f"{', '.join(map(str, HS_NUMBERS))}")
    return HS_DATA[number]


def hs_problem(number: int):
    """Hock–Schittkowski problem ``number`` as a `NonlinearProgram` (JAX autodiff derivatives).

    The program has ``known_optimum`` $= f^*$ (and ``known_solution`` where $x^*$ has a closed
    form), so `NonlinearProgram.check` compares with the published optimum. Raises
    ``ValueError`` for a number not in `HS_NUMBERS`.
    """
    import jax.numpy as jnp

    from cvxkit.problems.nlp import NonlinearProgram

    d = _get(number)
    return NonlinearProgram(
        lambda x: d.f(x, jnp), lambda x: d.c(x, jnp), np.array(d.x0),
        known_optimum=d.f_star, known_solution=None if d.x_star is None else np.array(d.x_star),
        name=f"HS{number}",
    )
