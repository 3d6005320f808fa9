"""The README's "Use the cells in your own JAX code" section runs as written."""

import pathlib
import re

import jax
import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _blocks():
    text = README.read_text()
    section = re.search(r"<!-- section:cells -->(.*?)<!-- /section:cells -->", text, re.S)
    assert section, "README.md lost its cells section markers"
    return re.findall(r"```python\n(.*?)```", section.group(1), re.S)


def test_readme_cells_section_runs():
    blocks = _blocks()
    assert len(blocks) == 2, "expected the library block and the PyTorch block"
    ns = {}
    exec(compile(blocks[0], "README.md[cells][0]", "exec"), ns)
    assert ns["ys"].shape == (4, 10, 32) and ns["ys_bi"].shape == (4, 10, 32)
    # The training loop in the snippet lowers the loss.
    initial = ns["loss_fn"](ns["cell"].init(jax.random.key(0), input_size=8))
    assert float(ns["loss_fn"](ns["params"])) < 0.8 * float(initial)

    torch = pytest.importorskip("torch")
    exec(compile(blocks[1], "README.md[cells][1]", "exec"), ns)
    with torch.no_grad():
        ys_torch, _ = ns["torch_lstm"](torch.from_numpy(np.array(ns["xs"])))
    ys, _ = ns["stack"](ns["sparams"], ns["xs"])
    np.testing.assert_allclose(ys, ys_torch.numpy(), rtol=1e-4, atol=1e-5)
