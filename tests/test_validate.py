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
    ([[1.0]], {"ndim": 1}, "must be a 1-D array"),
    ([], {"nonempty": True}, "non-empty"),
    ([1.0, np.nan], {"finite": True}, "NaN or infinite"),
    ([1.0, np.inf], {"finite": True}, "NaN or infinite"),
])
def test_float_array_errors(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        float_array("v", value, **kwargs)
