r"""Our GPT's training step against nanoGPT's own, same process, interleaved: is the attention
baseline as fast here as in the code researchers know? (A budget study is only fair to the GPT
if its steps are not slower than they need be.)

    python -m experiments.studies.recurrent_vs_attention.bench_gpt --nanogpt=/tmp/nanoGPT \
        --json=/tmp/bench_gpt.json

One step = forward, backward, gradient clipping and the AdamW update: ours is the loop's own
jitted `train_step` (experiments/configs/shakespeare_gpt.py's model and optimiser), theirs is
their train.py's loop body on their `model.py` (eager PyTorch, `compile=False` as their CPU
command; `--torch_compile` tries torch.compile too). Both draw random windows of the training
text. Shapes: nanoGPT's CPU command (4 x 128, batch 12 x 64) and the budget study's GPT at the
same size (batch 16 x 256). Tables report the median of `--repeats` interleaved calls; torch
gets as many threads as the machine has cores (XLA's default).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from experiments.lab import records, tables, timing

FLAGS = flags.FLAGS
SHAPES = {  # name -> (batch, context, layers, width, heads)
    "nanoGPT CPU command": (12, 64, 4, 128, 4),
    "budget study, 4 x 128": (16, 256, 4, 128, 4),
}


def ours(batch: int, context: int, layers: int, width: int, heads: int):
    """A call that runs one training step of our loop (state donated and kept)."""
    import jax

    from experiments.configs import shakespeare_gpt
    from train import optim, sharding, state, steps, validate

    config = shakespeare_gpt.get_config(
        f"batch_size={batch},block_size={context},num_layers={layers},hidden_size={width},"
        f"num_heads={heads}"
    )
    task = validate.validate(config)(config)
    tx, _ = optim.make_optimizer(config.optim, config.train.num_steps, None)
    step = steps.make_train_step(task, tx, config.optim.grad_clip_norm)
    box = {"state": state.create(task, tx, 0, batch)}
    batches = task.train_iterator()
    mesh = sharding.make_mesh()

    def call():
        b = next(batches)
        b = sharding.to_global(b, sharding.leading_axis_sharding(mesh, b))
        box["state"], sums = step(box["state"], b)
        return sums

    jax.block_until_ready(call())  # compile
    return call


def theirs(nanogpt: str, batch: int, context: int, layers: int, width: int, heads: int):
    """A call that runs one step of nanoGPT's train.py loop body on their model."""
    import numpy as np
    import torch

    sys.path.insert(0, nanogpt)
    from model import GPT, GPTConfig  # their model.py

    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=context, vocab_size=65, n_layer=layers, n_head=heads,
                          n_embd=width, dropout=0.0, bias=False))  # fmt: skip
    if FLAGS.torch_compile:
        model = torch.compile(model)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
    data = np.random.default_rng(0).integers(0, 65, size=1_000_000)

    def call():
        ix = np.random.randint(0, len(data) - context - 1, size=batch)
        x = torch.from_numpy(np.stack([data[i : i + context] for i in ix]))
        y = torch.from_numpy(np.stack([data[i + 1 : i + 1 + context] for i in ix]))
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    call()
    return call


def main(argv):
    del argv
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rows, results = [], []
    for name, shape in SHAPES.items():
        calls = {"ours (JAX)": ours(*shape), "nanoGPT (PyTorch)": theirs(FLAGS.nanogpt, *shape)}
        seconds = timing.interleaved(calls, repeats=FLAGS.repeats)
        stats = {k: timing.summary(v) for k, v in seconds.items()}
        tokens = shape[0] * shape[1]
        ours_s, theirs_s = (stats[k]["median_s"] for k in calls)
        rows.append([name, f"{ours_s * 1e3:.1f}", f"{theirs_s * 1e3:.1f}",
                     f"{tokens / ours_s:,.0f}", f"{tokens / theirs_s:,.0f}",
                     f"{theirs_s / ours_s:.2f}x"])  # fmt: skip
        results.append({"shape": name, "batch_context_layers_width_heads": shape, **{
            k: s for k, s in stats.items()}})  # fmt: skip
    header = ["shape", "ours ms/step", "nanoGPT ms/step", "ours tokens/s", "nanoGPT tokens/s",
              "ours faster by"]  # fmt: skip
    table = tables.markdown(header, rows, align="lrrrrr")
    print(table)
    if FLAGS.json:
        record = {"name": "bench_gpt", "results": results, "table": table,
                  "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                  "torch_compile": FLAGS.torch_compile, "repeats": FLAGS.repeats}  # fmt: skip
        records.write(FLAGS.json, {**record, **records.provenance()})


if __name__ == "__main__":
    flags.DEFINE_string("nanogpt", None, "A checkout of karpathy/nanoGPT.", required=True)
    flags.DEFINE_string("json", "", "Where the record goes ('' = print only).")
    flags.DEFINE_integer("repeats", 20, "Interleaved calls per implementation.")
    flags.DEFINE_bool("torch_compile", False, "torch.compile their model (their GPU default).")
    app.run(main)
