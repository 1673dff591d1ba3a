r"""Batches of ADMM problems on JAX: one vmapped loop, compaction, one block per device.

A batch (every array with a leading batch axis, one problem per member) runs as one
``jax.vmap``-ed ADMM loop (`batch_algorithm`, any `cvxkit.solvers.admm.Splitting`), iterating
until every member has stopped; a stopped member is frozen. Under ``vmap`` every member pays for
every iteration until the slowest stops, so `run_batch` compacts the batch: once the running
members fit in at most ``COMPACT_FRACTION`` of it, they are gathered into a smaller batch (a
power of two, at least ``MIN_BUCKET``) and the stopped ones are written back. With a device mesh
each device steps its own block of members (`per_device`, ``jax.shard_map``, no communication).
Compiled code lives in the driver's bounded `cvxkit.solvers.driver.compile_cache` (`aot`).
"""
from __future__ import annotations

import functools
import time

import numpy as np

from cvxkit.solvers.admm import Data, Splitting, State, apply_rho, block, iterations, rho_estimate
from cvxkit.solvers.backend import Backend
from cvxkit.solvers.driver import Algorithm, Options, compile_cache, signature
from cvxkit.solvers.primal_dual import RUNNING

#: a batch is compacted (to the next power of two above its running members) once that size is
#: at most this fraction of its size (each new size costs one compilation)
COMPACT_FRACTION = 0.6
#: a refactorization gathers the members that change rho into a sub-batch of 1/this of the batch
REFACTOR_FRACTION = 8
#: smallest compacted batch (a new size costs a compilation; at 1000 members of n = 10 the steps
#: of the last few dozen members cost 0.17 ms at 16 members against 0.38 ms at 64)
MIN_BUCKET = 16
#: members per chunk of a batch's iterations (see `_chunked`)
CHUNK = 256


def _batch_monitor(bk, s: State, d: Data):
    xp = bk.xp
    running = s.flag == RUNNING
    return {"running": xp.sum(running),
            "max_prim_res": xp.max(xp.where(running, s.prim_res, 0.0)),
            "max_dual_res": xp.max(xp.where(running, s.dual_res, 0.0))}


def _batch_stopped(bk, s: State, d: Data, axis=None):
    """All members stopped, or few enough still run that the batch should be compacted. With
    ``axis`` (inside ``shard_map``), over the blocks of all devices: all stopped, or the busiest
    block should be compacted (so that every device stops at the same step)."""
    xp = bk.xp
    running = most = total = xp.sum(s.flag == RUNNING)
    if axis is not None:
        most, total = bk._jax.lax.pmax(running, axis), bk._jax.lax.psum(running, axis)
    return (total == 0) | (compacted_size(xp, most, s.flag.shape[0]) > 0)


def compacted_size(xp, running, size):
    """The size to compact a batch of ``size`` with ``running`` members to, or 0 for none: the
    next power of two >= ``running`` (at least MIN_BUCKET), if it is at most
    ``COMPACT_FRACTION * size``."""
    new = xp.maximum(MIN_BUCKET, 2 ** xp.ceil(xp.log2(xp.maximum(running, 1))))
    ok = (running > 0) & (new <= COMPACT_FRACTION * size)
    return xp.where(ok, new, 0).astype(int) if xp is np else xp.where(ok, new, 0)


def _chunked(bk, f, s, d):
    """``f(s, d)`` on a batch, run over chunks of about ``CHUNK`` members one after the other
    (``lax.map``) when the batch splits evenly, so that each chunk's data stays in cache for
    all the iterations of a block."""
    size = s.k.shape[0]
    c = max(1, round(size / CHUNK))
    if c == 1 or size % c:
        return f(s, d)
    tm = bk._jax.tree_util.tree_map
    out = bk._jax.lax.map(lambda sd: f(*sd), tm(lambda a: a.reshape((c, size // c) + a.shape[1:]),
                                                (s, d)))
    return tm(lambda a: a.reshape((size,) + a.shape[2:]), out)


def batch_algorithm(name: str, sp: Splitting) -> Algorithm:
    """The driver `Algorithm` of ADMM with splitting ``sp`` over a batch: the state and data
    carry a leading batch dimension, the step is the ``jax.vmap`` of `cvxkit.solvers.admm.block`
    (JAX only), and the run stops once every member has stopped. Call it once per splitting."""

    def step(bk, s, d):
        # Members still running have all done the same number of iterations: one trip count for
        # the whole batch keeps the inner loop free of per-member selects. A refactorization runs
        # only when some member changes rho, and then only for the members that change (gathered
        # into a sub-batch of an eighth of the batch; all members when more change).
        xp, vmap, tm = bk.xp, bk._jax.vmap, bk._jax.tree_util.tree_map
        n = xp.minimum(d.settings.block[0], d.settings.max_iter[0] - xp.max(s.k))
        moved = _chunked(bk, vmap(lambda s, d: iterations(bk, sp, d, s, n)), s, d)
        s = vmap(lambda s, t, d: block(bk, sp, d, s, n, adapt=False, advanced=t))(s, moved, d)
        est, change = vmap(lambda s, d: rho_estimate(bk, sp, d, s))(s, d)
        size = s.k.shape[0]
        sub = max(1, size // REFACTOR_FRACTION)

        def refactor(s, d, est, change):
            return vmap(lambda s, d, e, c: apply_rho(bk, sp, d, s, e, c))(s, d, est, change)

        def some(s):
            idx = xp.nonzero(change, size=sub, fill_value=size)[0]  # `size`: no member
            part = refactor(tm(lambda a: a[idx], s), tm(lambda a: a[idx], d), est[idx],
                            change[idx])
            return tm(lambda a, b: a.at[idx].set(b, mode="drop"), s, part)

        many = xp.sum(change) > sub
        return bk.cond(xp.any(change), lambda s: bk.cond(
            many, lambda s: refactor(s, d, est, change), some, s), lambda s: s, s)

    return Algorithm(name + "-batch", step, _batch_monitor, _batch_stopped)


def host_devices(mesh) -> bool:
    """``mesh`` spans several CPU devices (see `cvxkit.solvers.admm_box.QP_DENSE_INVERSE_XLA`)."""
    return mesh is not None and mesh.devices.size > 1 and all(
        dev.platform == "cpu" for dev in mesh.devices.flat)


def aot(bk, name, fn, *args, donate=()):
    """``fn`` jitted and compiled for the shapes of ``args``; returns ``(compiled, seconds of
    compilation)`` (0 when cached). ``name`` identifies ``fn`` by static configuration only;
    the key in `cvxkit.solvers.driver.compile_cache` is ``("admm", name, bk, signature)``.
    ``donate``: positions of arguments whose buffers the call may reuse (then invalid)."""
    jax = bk._jax
    spent = []

    def build():
        t = time.perf_counter()
        compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
        spent.append(time.perf_counter() - t)
        return compiled

    return compile_cache.get(("admm", name, bk, *signature(jax, args)), build), sum(spent)


def default_device(jax):
    """The device JAX would use (``jax.default_device`` when set)."""
    dev = jax.config.jax_default_device
    return dev if isinstance(dev, jax.Device) else jax.devices()[0]


@functools.lru_cache(maxsize=16)
def one_device_mesh(device):
    import jax

    return jax.sharding.Mesh(np.array([device]), ("batch",))


def per_device(bk, mesh, fn, in_batched, out_batched=True):
    """``fn`` run by every device of ``mesh`` on its own block of the batch (``jax.shard_map``,
    no communication). ``in_batched[i]``: argument ``i`` is split over the batch (else each
    device gets all of it). ``out_batched`` (a bool, or one per output of a tuple): that output
    is split over the batch, else it is per device (a leading axis of one entry per device)."""
    jax = bk._jax
    spec = jax.sharding.PartitionSpec
    axis = mesh.axis_names[0]

    def local(*args):
        out = fn(*args)
        if out_batched is True:
            return out
        return tuple(o if b else jax.tree_util.tree_map(lambda v: v[None], o)
                     for o, b in zip(out, out_batched))

    return jax.shard_map(local, mesh=mesh, in_specs=tuple(spec(axis) if b else spec()
                                                          for b in in_batched),
                         out_specs=spec(axis), check_vma=False)


@functools.lru_cache(maxsize=4)
def _compaction_fns(bk):
    """``scatter(full, idx, part)`` and ``gather(full, idx)`` over whole pytrees (compiled by
    `aot`)."""
    tm = bk._jax.tree_util.tree_map

    def scatter(full, idx, part):
        return tm(lambda F, c: F.at[idx].set(c), full, part)

    def gather(full, idx):
        return tm(lambda F: F[idx], full)

    return scatter, gather


def run_batch(alg: Algorithm, bk: Backend, s: State, d: Data, opts: Options, mesh):
    """The driver loop for a batch on the devices of ``mesh``, with compaction.

    Under ``vmap`` every member pays for every iteration until the slowest one stops. So the
    devices step their blocks together until at most ``COMPACT_FRACTION`` of the block size
    holds the running members of the busiest block (the compiled loop stops there by itself:
    `_batch_stopped`, with the counts of all devices); then every block is cut to the same
    smaller size (a power of two, at least ``MIN_BUCKET``, padded with copies of a stopped
    member, which stays frozen) holding its running members, and the loop goes on; the stopped
    members are written back. Members never leave their device, and every member gets the
    iterations it would get on one device. Each block size is compiled once (cached; reported
    in ``compile_time``). ``opts.max_iter`` and the history count iterations
    (``alg.iterations_per_step`` per step).
    """
    from cvxkit.solvers.driver import Run, _advance_fn, _Monitor, _steps_left

    scatter, gather = _compaction_fns(bk)
    jax = bk._jax
    stopped = functools.partial(_batch_stopped, axis=mesh.axis_names[0])  # the host's test below
    advance = _advance_fn(alg._replace(converged=stopped), bk)

    def advance_monitored(s, d, n):
        s, i = advance(s, d, n)
        return s, (i, alg.monitor(bk, s, d))

    fns = {"advance": per_device(bk, mesh, advance_monitored, (True, True, False), (True, False)),
           "monitor": per_device(bk, mesh, lambda s, d: (alg.monitor(bk, s, d),), (True, True),
                                  (False,)),
           "scatter": per_device(bk, mesh, scatter, (True, True, True)),
           "gather": per_device(bk, mesh, gather, (True, True))}
    compile_time = 0.0
    per = alg.iterations_per_step
    base = alg._replace(iterations_per_step=1)  # the compiled code does not depend on it
    found = {}  # within this run the shapes follow from the batch sizes: skip aot's signature

    def call(name, *args, donate=()):
        nonlocal compile_time
        key = (name, *(jax.tree_util.tree_leaves(a)[0].shape for a in args[:2]))
        if key not in found:
            found[key], c = aot(bk, (name, base, mesh), fns[name], *args, donate=donate)
            compile_time += c
        return found[key](*args)

    def host(v):
        """Monitor values of all devices combined."""
        v = jax.device_get(v)
        return {k: (int(v[k].sum()) if k == "running" else v[k].max()) for k in v}

    n_dev = mesh.devices.size
    t0 = time.perf_counter()
    mon = _Monitor(alg.name, opts, t0)
    full_s, full_d = s, d
    block = s.k.shape[0] // n_dev
    idx = np.tile(np.arange(block), (n_dev, 1))  # per device: positions in its block of full_s
    it = 0
    values = host(call("monitor", s, d)[0])
    status = mon.check(0, values, values["running"] == 0)
    while status is None:
        steps = _steps_left(opts.max_iter - it, per)  # the last block stops at max_iter
        s, (i, values) = call("advance", s, d, min(opts.check_every, steps))
        # the same on every device; capped as the driver caps it
        it = min(it + int(np.max(jax.device_get(i))) * per, opts.max_iter)
        values = host(values)
        status = mon.check(it, values, values["running"] == 0)
        flags = np.asarray(s.flag).reshape(n_dev, -1)
        size = int(compacted_size(np, (flags == RUNNING).sum(axis=1).max(), flags.shape[1]))
        if status is None and size > 0:
            new_idx = np.empty((n_dev, size), dtype=idx.dtype)
            for k in range(n_dev):
                keep = idx[k][flags[k] == RUNNING]
                new_idx[k, :keep.size] = keep
                new_idx[k, keep.size:] = idx[k][flags[k] != RUNNING][0]
            full_s = call("scatter", full_s, idx.ravel(), s, donate=(0,))  # in place
            idx = new_idx
            s, d = call("gather", (full_s, full_d), idx.ravel())
    if idx.shape[1] == block:  # never compacted: s is the whole batch, in order
        full_s = s
    else:
        full_s = call("scatter", full_s, idx.ravel(), s, donate=(0,))
    return Run(full_s, status, it, mon.history, time.perf_counter() - t0 - compile_time,
               compile_time)
