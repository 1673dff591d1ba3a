"""Helpers shared by the benchmark scripts (imported as ``common`` when a script runs)."""
from __future__ import annotations

import json
import os
import time


def best_of(repeat, fn):
    """Run ``fn()`` ``repeat`` times; return (its last output, the smallest wall time)."""
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def write_results(path, env, args, rows):
    """Write ``{"environment", "args", "rows"}`` as JSON to ``path`` (folders made as needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"environment": env, "args": vars(args), "rows": rows}, f, indent=1,
                  default=str)
    print(f"wrote {path}")
