"""docs/adding_a_method.md's example method runs as written and solves its problem."""
import pathlib
import re
import types

import numpy as np
import pytest
from scipy.optimize import nnls

from cvxkit.solvers import Status

PAGE = pathlib.Path(__file__).parents[2] / "docs" / "adding_a_method.md"


@pytest.fixture(scope="module")
def example():
    """The page's solver file, executed as a module."""
    code = re.search(r"```python\n(# solvers/nnls_pgd.py.*?)```", PAGE.read_text(), re.S).group(1)
    mod = types.ModuleType("nnls_pgd")
    exec(compile(code, str(PAGE), "exec"), mod.__dict__)
    return mod


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_example_matches_scipy_nnls(example, backend):
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((30, 10)), rng.standard_normal(30)
    tol = 1e-9
    res = example.nnls_pgd(A, b, backend=backend, tol=tol)
    x_ref, _ = nnls(A, b)
    assert res.status is Status.OPTIMAL and res.method == "nnls_pgd" and res.message
    ref = 0.5 * np.sum((A @ x_ref - b) ** 2)
    assert abs(res.objective - ref) <= 1e3 * tol * max(ref, 1.0)
    np.testing.assert_allclose(res.x, x_ref, atol=1e3 * tol * np.max(np.abs(A.T @ b)))
    assert np.all(res.dual[res.x > 1e-8] == pytest.approx(0.0, abs=1e-6))  # complementarity
    warm = example.nnls_pgd(A, b, backend=backend, tol=tol, warm_start=res)
    assert warm.iterations <= 10
    assert example.nnls_pgd(A, b, max_iter=2).status is Status.MAX_ITER
    with pytest.raises(ValueError, match="warm_start"):
        example.nnls_pgd(A, b, warm_start=np.zeros(3))
