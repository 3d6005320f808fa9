"""The synthetic task: its target rule, resumable iterators, epochs and resets."""

from __future__ import annotations

import numpy as np
import train_testing as tt

from train.tasks import registry


def test_targets_follow_the_rule():
    config = tt.tiny_config()
    task = registry.get_task(config)
    it = task.train_iterator()
    stream_x, stream_y = [], []
    for _ in range(config.data.steps_per_epoch):
        b = next(it)
        stream_x.append(b["x"])
        stream_y.append(b["y"])
    s, y = np.concatenate(stream_x, 1), np.concatenate(stream_y, 1)
    d, v = config.data.delay, config.data.vocab_size
    for t in range(s.shape[1]):
        past = s[:, t - d] if t >= d else 0
        np.testing.assert_array_equal(y[:, t], (s[:, t] + past) % v)


def test_iterator_state_round_trip_and_epoch_resets():
    for carry in (True, False):
        task = registry.get_task(tt.tiny_config(**{"data.carry": carry}))
        it = task.train_iterator()
        for _ in range(4):
            next(it)
        state = it.get_state()
        ahead = [next(it) for _ in range(5)]
        it2 = task.train_iterator()
        it2.set_state(state)
        again = [next(it2) for _ in range(5)]
        for a, b in zip(ahead, again, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
        if carry:  # steps_per_epoch = 6: step 6 starts epoch 2 with a reset
            assert [bool(b["reset"][0]) for b in ahead] == [False, False, True, False, False]
            assert task.init_carry(8) is not None
        else:
            assert task.init_carry(8) is None


def test_eval_batches_are_finite_and_fixed():
    task = registry.get_task(tt.tiny_config())
    a, b = list(task.eval_batches("valid")), list(task.eval_batches("valid"))
    assert len(a) == 2
    np.testing.assert_array_equal(a[1]["x"], b[1]["x"])
    assert bool(a[0]["reset"][0]) and not bool(a[1]["reset"][0])
    test = list(task.eval_batches("test"))
    assert not np.array_equal(a[0]["x"], test[0]["x"])
