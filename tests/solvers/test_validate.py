"""The shared input checks (cvxkit.solvers.validate)."""
import numpy as np
import pytest

from cvxkit.solvers.validate import float_array


def test_float_array_converts_and_checks():
    a = float_array("v", [1, 2, 3], ndim=1, nonempty=True, finite=True)
    assert a.dtype == np.float64 and a.shape == (3,)
    src = np.zeros(2)
    assert float_array("v", src, copy=True) is not src


@pytest.mark.parametrize("value, kwargs, match", [
    ([1 + 2j], {}, "must be real"),
    (["a", "b"], {}, "must be a numeric array"),
    ([["0", "1"], ["1", "0"]], {}, "text entries"),
    ([[1.0]], {"ndim": 1}, "must be a 1-D array"),
    ([], {"nonempty": True}, "non-empty"),
    ([1.0, np.nan], {"finite": True}, "NaN or infinite"),
    ([1.0, np.inf], {"finite": True}, "NaN or infinite"),
])
def test_float_array_errors(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        float_array("v", value, **kwargs)


# --- matrices in every scipy.sparse format, and option checks ---------------------------------
import scipy.sparse as sp  # noqa: E402

from cvxkit.solvers import validate  # noqa: E402

_FORMATS = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]


@pytest.mark.parametrize("fmt", _FORMATS)
@pytest.mark.parametrize("kind", [sp.csr_matrix, sp.csr_array])
def test_matrix_accepts_every_sparse_format(fmt, kind):
    dense = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, -3.0]])
    M = kind(dense).asformat(fmt)
    out = validate.matrix("A", M)
    assert sp.isspmatrix_csc(out) and out.dtype == np.float64
    np.testing.assert_array_equal(out.toarray(), dense)
    np.testing.assert_array_equal(validate.matrix("A", M, sparse=False), dense)


@pytest.mark.parametrize("M, match", [
    (sp.csr_matrix(np.array([[1.0, np.nan]])), "A contains NaN"),
    (sp.csr_matrix(np.array([[1.0 + 1j, 0]])), "A must be real"),
    (sp.csr_matrix((0, 0)), "non-empty"),
    ([[1.0, 2.0], [3.0]], "ragged"),
    (None, "A is required"),
    ("abc", "A must be a numeric array"),
    (np.array([object(), 1.0]), "A must be a numeric array"),
    ([[1, 2j]], "A must be real"),
])
def test_matrix_errors_name_the_argument(M, match):
    with pytest.raises(ValueError, match=match):
        validate.matrix("A", M, nonempty=True)


@pytest.mark.parametrize("fn, value, kwargs, exc", [
    (validate.positive, "x", {}, TypeError),
    (validate.positive, None, {}, TypeError),
    (validate.positive, True, {}, TypeError),
    (validate.positive, 0.0, {}, ValueError),
    (validate.positive, -1, {}, ValueError),
    (validate.positive, float("nan"), {}, ValueError),
    (validate.positive, float("inf"), {}, ValueError),
    (validate.positive, 2.0, {"upper": 2.0}, ValueError),
    (validate.integer, 2.5, {}, TypeError),
    (validate.integer, -5, {}, ValueError),
    (validate.integer, True, {}, TypeError),
    (validate.boolean, 1, {}, TypeError),
    (validate.choice, "cubic", {"choices": ("l1", "l2")}, ValueError),
])
def test_option_checks(fn, value, kwargs, exc):
    with pytest.raises(exc, match="opt"):
        fn("opt", value, **kwargs)


def test_option_checks_pass_good_values():
    assert validate.positive("t", float("inf"), allow_inf=True) == float("inf")
    assert validate.nonnegative("t", 0) == 0.0
    assert validate.positive("t", None, allow_none=True) is None
    assert validate.integer("k", np.int64(3)) == 3
    assert validate.boolean("b", np.bool_(True)) is True


def test_solve_refuses_options_the_problem_sets_itself():
    from cvxkit.problems import MetricNearness

    D = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 1.0], [3.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match=r"loss.*valid options: .*max_iter"):
        MetricNearness(D).solve(loss="l1")


@pytest.mark.parametrize("fmt", _FORMATS)
def test_float_array_densifies_every_sparse_format(fmt):
    dense = np.array([[1.0, 0.0], [0.0, -2.0]])
    np.testing.assert_array_equal(float_array("v", sp.csr_array(dense).asformat(fmt)), dense)
