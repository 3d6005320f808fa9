"""The LTSF linear baselines' schedule is DLinear's `lradj='type1'` (cure-lab/LTSF-Linear's
utils/tools.py: lr * 0.5 ** ((epoch - 1) // 1), applied with epoch + 1 after each 0-indexed
epoch): the first two epochs at the full rate, then halved after every epoch."""

from __future__ import annotations

import pytest

from experiments.configs import ltsf
from train import optim


@pytest.mark.parametrize("dataset", ["etth1", "exchange"])
def test_the_rate_per_epoch_is_dlinears_type1(dataset):
    config = ltsf.get_config(f"dataset={dataset},model=dlinear,horizon=96")
    steps_per_epoch = 7
    _, schedule = optim.make_optimizer(config.optim, 10 * steps_per_epoch, steps_per_epoch)
    lr = config.optim.learning_rate
    per_epoch = [float(schedule(e * steps_per_epoch)) for e in range(5)]
    assert per_epoch == pytest.approx([lr, lr, lr / 2, lr / 4, lr / 8])
    last_step_of_first_two = float(schedule(2 * steps_per_epoch - 1))
    assert last_step_of_first_two == pytest.approx(lr)
