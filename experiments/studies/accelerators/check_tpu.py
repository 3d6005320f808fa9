r"""Deviceless TPU compilation: the cells and a training step compiled by XLA:TPU on a CPU machine.

    make check-tpu                       # own venv with libtpu; writes workdirs/check_tpu/
    make check-tpu CHECK_TPU_OUT=DIR

libtpu compiles for a TPU topology described by `jax.experimental.topologies.
get_topology_desc` (a 2x2 host of v5e and of v6e; the programs use one chip) without the chip:
this is XLA's TPU compiler, so what fails here (an op without a TPU lowering, a layout, memory
over the chip's HBM) fails on the device too. It runs nothing, so it proves nothing about speed
or values; those need the device.

For each topology it compiles `cells.scan`'s gradient (LSTM and GRU, autodiff and the hand-written
fused backward; the LSTM at H = 256 and 1024; minGRU's parallel mode; the mLSTM's chunkwise form)
and the ptb_small training step (`train.export`'s step: loss, gradient, clipping, SGD) and the
Pallas LSTM/GRU kernels (`backend='pallas'`, H = 256 and 1024, VMEM per shape), and records the
compile time and XLA's memory analysis (arguments, outputs, temporaries, generated code) in
OUT/tpu_compile.json. Exit status 1 if any compilation fails (the error in the JSON and on stderr).

The environment it needs is set by `make check-tpu`: JAX_PLATFORMS=cpu (JAX must not look for
a TPU to run on), TPU_SKIP_MDS_QUERY=1 (no cloud metadata server to ask). libtpu lives in its
own venv (.venv-tpu, extra `tpu` of setup.cfg, pinned in constraints.txt to the installed
jax), because where it is installed JAX probes for a TPU at every start-up.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from absl import app, flags

from experiments.lab import records

FLAGS = flags.FLAGS
TOPOLOGIES = ("v5e:2x2", "v6e:2x2")  # one host of each; the programs use one chip
BATCH, STEPS = 32, 128  # compile time does not grow with T: the loop is a while


def define_flags() -> None:
    flags.DEFINE_string("out", os.path.join(records.ROOT, "workdirs", "check_tpu"), "Output dir.")
    flags.DEFINE_list("topologies", list(TOPOLOGIES), "TPU topologies (get_topology_desc names).")
    flags.DEFINE_bool("force", False, "Replace OUT/tpu_compile.json if it exists.")


def _on(device, tree):
    """ShapeDtypeStructs of `tree` placed on one (abstract) TPU device."""
    import jax

    sharding = jax.sharding.SingleDeviceSharding(device)
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)


def scan_programs():
    """[(name, function, abstract args)] of the cells.scan gradients to compile."""
    import jax
    import jax.numpy as jnp

    import cells

    programs = []
    grid = [
        ("lstm", 256, "autodiff", "sequential"),
        ("lstm", 256, "fused", "sequential"),
        ("lstm", 1024, "autodiff", "sequential"),
        ("lstm", 1024, "fused", "sequential"),
        ("gru", 256, "autodiff", "sequential"),
        ("gru", 256, "fused", "sequential"),
        ("mingru", 256, "autodiff", "parallel"),
        ("mlstm", 256, "autodiff", "hoisted"),  # the chunkwise form (mode='auto')
    ]
    for name, hidden, backward, mode in grid:
        cell = cells.get(name)(hidden)

        def grad(params, xs, cell=cell, backward=backward, mode=mode):
            def loss(p):
                ys, _ = cells.scan(cell, p, xs, backward=backward, mode=mode)
                return jnp.sum(ys * ys)

            return jax.grad(loss)(params)

        params = jax.eval_shape(lambda cell=cell, h=hidden: cell.init(jax.random.key(0), h))
        xs = jax.ShapeDtypeStruct((BATCH, STEPS, hidden), jnp.float32)
        label = f"scan {name} H={hidden} B={BATCH} T={STEPS} backward={backward} mode={mode}"
        programs.append((label, grad, (params, xs)))
    return programs + pallas_programs()


def pallas_programs():
    """The Pallas kernels (`cells.kernels.pallas_rnn`, Mosaic TPU): forward and backward kernel
    in one gradient, at H = 256 and 1024, with the VMEM their blocks take."""
    import jax
    import jax.numpy as jnp

    import cells
    from cells.kernels import pallas_rnn

    programs = []
    for name in ("lstm", "gru"):
        for hidden in (256, 1024):
            cell = cells.get(name)(hidden)

            def grad(params, xs, cell=cell):
                def loss(p):
                    carry = cell.initial_carry(BATCH)
                    ys, _ = pallas_rnn.scan(cell, p, xs, carry, interpret=False)
                    return jnp.sum(ys * ys)

                return jax.grad(loss)(params)

            params = jax.eval_shape(lambda cell=cell, h=hidden: cell.init(jax.random.key(0), h))
            xs = jax.ShapeDtypeStruct((BATCH, STEPS, hidden), jnp.float32)
            blocks = pallas_rnn.vmem_bytes(name, BATCH, hidden, pallas_rnn.BLOCK_STEPS)
            limit = pallas_rnn.vmem_limit(name, BATCH, hidden, pallas_rnn.BLOCK_STEPS)
            label = (
                f"scan {name} H={hidden} B={BATCH} T={STEPS} backend=pallas (block_steps "
                f"{pallas_rnn.BLOCK_STEPS}; VMEM blocks {blocks / 2**20:.1f} MiB, scoped limit "
                f"{limit / 2**20:.1f} MiB)"
            )
            programs.append((label, grad, (params, xs)))
    return programs


def train_step_program():
    from experiments.configs import ptb_small
    from train import export

    flat_step, leaves, _, _ = export.flat_train_step(ptb_small.get_config())
    return "train_step ptb_small (2 x 200 LSTM, batch 20 x 20, SGD)", flat_step, tuple(leaves)


def compile_one(label, fn, args, device) -> dict:
    import jax

    start = time.time()
    compiled = jax.jit(fn).lower(*_on(device, args)).compile()
    seconds = time.time() - start
    memory = compiled.memory_analysis()
    record = {"program": label, "compile_s": round(seconds, 2)}
    if memory is not None:
        for field in (
            "argument_size_in_bytes",
            "output_size_in_bytes",
            "temp_size_in_bytes",
            "generated_code_size_in_bytes",
        ):
            record[field] = int(getattr(memory, field))
    return record


def main(argv) -> None:
    del argv
    import jax
    from jax.experimental import topologies

    from train import provenance

    programs = [*scan_programs(), train_step_program()]
    results, failures = [], 0
    for topology in FLAGS.topologies:
        device = topologies.get_topology_desc(topology, "tpu").devices[0]
        for label, fn, args in programs:
            try:
                record = compile_one(label, fn, args, device)
                print(
                    f"[check-tpu] {topology} ({device.device_kind}): {label}: compiled in "
                    f"{record['compile_s']:.1f} s, temporaries "
                    f"{record.get('temp_size_in_bytes', 0) / 2**20:.1f} MiB",
                    flush=True,
                )
            except Exception as e:  # noqa: BLE001 -- every failure is recorded and reported
                failures += 1
                record = {"program": label, "error": f"{type(e).__name__}: {e}"}
                print(f"[check-tpu] {topology}: {label}: FAILED\n{traceback.format_exc()}",
                      file=sys.stderr)  # fmt: skip
            results.append({"topology": topology, "device_kind": device.device_kind, **record})
    os.makedirs(FLAGS.out, exist_ok=True)
    from importlib import metadata

    record = {
        "what": "XLA:TPU compilation without a TPU (libtpu, jax.experimental.topologies): "
        "compile seconds on this machine's CPU and XLA's memory analysis per program.",
        "jax": jax.__version__,
        "libtpu": metadata.version("libtpu"),
        "command": "make check-tpu",
        "git_commit": provenance.git_commit(),
        "hardware": provenance.hardware(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
        "failures": failures,
    }
    path = os.path.join(FLAGS.out, "tpu_compile.json")
    # Only the committed reference (a study's results/) is kept from being replaced.
    protected = records.is_committed(path)
    records.write(path, record, FLAGS.force or not protected)
    print(f"[check-tpu] {len(results) - failures}/{len(results)} compiled; wrote {path}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
