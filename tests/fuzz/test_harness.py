"""The fuzz judge itself: it must fail on each kind of defect (else the suite cannot fail)."""
import numpy as np
import pytest

from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.validate import float_array

from .harness import COUNTS, judge


@pytest.fixture(autouse=True)
def _uncounted():
    """The self-tests' outcomes stay out of the suite's summary."""
    yield
    COUNTS.pop("harness", None)
    COUNTS.pop("harness-selftest", None)


def _optimal(x):
    return lambda: Result(x=x, status=Status.OPTIMAL, objective=float(x))


def test_a_clear_cvxkit_error_is_an_outcome():
    assert judge("harness", lambda: float_array("q", [1j]), names=["q"]) == "error"


def test_an_error_from_inside_numpy_fails():
    with pytest.raises(AssertionError, match="CRASH.*inside a dependency"):
        judge("harness-selftest", lambda: np.linalg.inv(np.zeros((2, 2))).sum() + np.ones(2) @ np.ones(3))


def test_an_error_that_does_not_name_the_argument_fails():
    with pytest.raises(AssertionError, match="UNCLEAR ERROR"):
        judge("harness-selftest", lambda: float_array("q", [1j]), names=["tol"])


def test_a_wrong_optimal_fails_and_is_counted():
    before = COUNTS["harness-selftest"]["FAILED: silent wrong answer"]
    with pytest.raises(AssertionError, match="SILENT WRONG ANSWER"):
        judge("harness-selftest", _optimal(1.0), verify=lambda r: None if r.x == 2 else "x != 2")
    assert COUNTS["harness-selftest"]["FAILED: silent wrong answer"] == before + 1
    assert judge("harness", _optimal(2.0), verify=lambda r: None if r.x == 2 else "x != 2") == "optimal"


def test_an_unverifiable_optimal_fails():
    with pytest.raises(AssertionError, match="UNVERIFIED OPTIMAL"):
        judge("harness-selftest", _optimal(1.0))


def test_an_honest_status_is_an_outcome():
    call = lambda: Result(x=None, status=Status.MAX_ITER, objective=float("nan"))  # noqa: E731
    assert judge("harness", call) == "status:max_iter"
