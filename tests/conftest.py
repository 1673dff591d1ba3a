import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

BACKENDS = ["numpy", "jax"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run a test once per array back end."""
    return request.param


def clouds(n, m, seed=0, shift=0.0, uniform=False):
    """Weights and squared-Euclidean cost between two random 2-D point clouds."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2)) + shift
    C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    if uniform:
        return np.full(n, 1 / n), np.full(m, 1 / m), C
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    return a / a.sum(), b / b.sum(), C


@pytest.fixture(autouse=True)
def _quiet_cvxpy():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        yield


def run_on_host_devices(code: str, devices: int):
    """Run ``code`` (formatted with ``tests``, this folder) in a fresh Python whose JAX sees
    ``devices`` CPU devices; it must print OK."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code.format(tests=str(pathlib.Path(__file__).parent))],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]
