"""train/tasks/moving_digits.py: the bundled digits, the bouncing generator, the metrics, the
three models, the copy-last baseline, the refusals and a tiny run through the CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import train_testing as tt

import cells
from experiments.configs import moving_digits as md_config
from train import errors, validate
from train.tasks import moving_digits as md

# A tiny canvas keeps the ConvLSTM's convolutions cheap.
TINY = "canvas=8,digit_size=4,num_digits=2,hidden_size=3,num_layers=1,kernel=3"


def _task(arg=TINY, **overrides):
    config = md_config.get_config(arg)
    with config.unlocked():
        config.data.num_valid = config.data.num_test = 5
        for key, value in overrides.items():
            section, field = key.split(".")
            config[section][field] = value
    validate.validate(config)
    return md.MovingDigitsTask(config)


def test_bundled_digits_and_their_split():
    images = md.load_digits()
    assert images.shape == (1797, 8, 8) and images.min() == 0.0 and images.max() == 1.0
    assert [hi - lo for lo, hi in md.IMAGE_SPLITS.values()] == [1297, 250, 250]
    scaled = md.scale_digits(images[:3], 16)
    assert scaled.shape == (3, 16, 16) and 0.0 <= scaled.min() and scaled.max() <= 1.0


def test_trajectories_bounce_inside_the_canvas_and_keep_their_speed():
    corners = md.trajectories(np.random.default_rng(0), 50, 2, 40, travel=12, speed=2.0)
    assert corners.min() >= 0 and corners.max() <= 12
    steps = np.abs(np.diff(corners, axis=2)).max()
    assert steps <= 3  # 2 px per frame (rounded), less at a wall

    # A digit moving straight right from 10 with speed 2 reaches the wall at 12 and comes back.
    class Rightward:  # position (row 5, column 10), angle 0: velocity (0, 2), to the right
        def uniform(self, low, high, size):
            return np.array([[[5.0, 10.0]]]) if size == (1, 1, 2) else np.zeros(size)

    rng = Rightward()
    path = md.trajectories(rng, 1, 1, 5, travel=12, speed=2.0)[0, 0]
    np.testing.assert_array_equal(path[:, 1], [10, 12, 10, 8, 6])
    np.testing.assert_array_equal(path[:, 0], [5, 5, 5, 5, 5])


def test_render_combines_overlapping_digits_by_their_maximum():
    images = np.array([[np.full((2, 2), 0.3), np.full((2, 2), 0.8)]])
    corners = np.array([[[[0, 0]], [[1, 1]]]])  # two digits, one frame
    frame = md.render(images, corners, canvas=4)[0, 0]
    np.testing.assert_allclose(frame[0, 0], 0.3)
    np.testing.assert_allclose(frame[1, 1], 0.8)  # the overlap
    np.testing.assert_allclose(frame[2, 2], 0.8)
    assert frame[3, 3] == 0.0 and frame[0, 2] == 0.0


def test_fixed_sets_are_deterministic_and_test_digits_are_held_out():
    a, b = _task(), _task()
    np.testing.assert_array_equal(a.examples("test")["x"], b.examples("test")["x"])
    assert a.examples("test")["x"].shape == (5, 20, 8, 8)
    assert not np.array_equal(a.examples("valid")["x"], a.examples("test")["x"])
    train = np.asarray(a.images["train"])
    assert not any(np.array_equal(img, t) for img in a.images["test"] for t in train[:200])
    batch = next(a.train_iterator())
    assert batch["x"].shape == (16, 20, 8, 8) and batch["weight"].shape == (16,)


def test_metrics_are_the_documented_sums():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 6))
    target = rng.uniform(size=(3, 4, 6))
    weight = np.array([1.0, 1.0, 0.0])  # the padded copy counts for nothing
    sums = md.frame_sums(jnp.asarray(logits), jnp.asarray(target), jnp.asarray(weight))
    metrics = md.summarize_sums(sums, frames=4, pixels=6)
    p = 1.0 / (1.0 + np.exp(-logits[:2]))
    bce = -(target[:2] * np.log(p) + (1 - target[:2]) * np.log(1 - p))
    se = (p - target[:2]) ** 2
    np.testing.assert_allclose(metrics["loss"], bce.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["bce_per_frame"], bce.sum(-1).mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["mse_per_frame"], se.sum(-1).mean(), rtol=1e-5)
    for k in range(4):
        np.testing.assert_allclose(
            metrics[f"mse_frame_{k + 1}"], se[:, k].sum(-1).mean(), rtol=1e-5
        )


def test_copy_last_baseline_repeats_the_last_input_frame():
    task = _task()
    got = task.copy_last_baseline("test")
    frames = task.examples("test")["x"]
    last, future = frames[:, 9:10], frames[:, 10:]
    se = ((last - future) ** 2).reshape(5, 10, -1).sum(-1)
    np.testing.assert_allclose(got["mse_per_frame"], se.mean(), rtol=1e-5)
    assert got["eps"] in md.COPY_LAST_EPS


def test_mean_frame_baseline_is_the_best_constant():
    """The per-pixel training mean beats other constants (all-zero, the mean shifted) on
    squared error, and it is the same image for every frame and sequence."""
    task = _task()
    got = task.mean_frame_baseline("test", sequences=512)
    frames = task.examples("test")["x"]
    future = task.targets(frames)
    mean = task.targets(task._sequences(np.random.default_rng([0, 3]), "train", 512)).mean((0, 1))
    se = ((np.clip(mean, 1e-6, 1 - 1e-6) - future) ** 2).sum(-1)
    np.testing.assert_allclose(got["mse_per_frame"], se.mean(), rtol=1e-4)
    for other in (np.zeros_like(mean), np.clip(mean + 0.05, 0, 1)):
        assert ((other - future) ** 2).sum(-1).mean() > got["mse_per_frame"]


@pytest.mark.parametrize("model", ["convlstm", "fc", "conv3d"])
def test_every_model_predicts_every_future_pixel_and_learns(model):
    task = _task(f"{TINY},model={model}")
    params = task.init_params(jax.random.key(0))
    frames = jnp.asarray(task.examples("valid")["x"])
    logits = task.predict_logits(params, frames)
    assert logits.shape == (5, 10, 64)
    batch = {"x": frames, "weight": jnp.ones(5)}
    loss, grads = jax.value_and_grad(lambda p: task.loss(p, None, batch, None, True)[0])(params)
    assert np.isfinite(float(loss))
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    if model != "conv3d":  # the forecaster's input is all zeros: its w_ih is never used
        assert not np.asarray(grads["forecaster"][0]["w_ih"]).any()
        grads["forecaster"][0]["w_ih"] = jnp.ones(1)
    assert all(np.asarray(g).any() for g in jax.tree.leaves(grads))  # every other one is used
    # The prediction depends on the input frames (the forecaster starts from the encoder).
    shuffled = task.predict_logits(params, frames[:, ::-1])
    assert not np.allclose(np.asarray(shuffled), np.asarray(logits))


def test_the_conv_lstm_head_is_a_one_by_one_convolution_of_the_forecasters_top_layer():
    task = _task()
    assert isinstance(task.cell, cells.ConvLSTM) and task.cell.spatial_shape == (8, 8)
    params = task.init_params(jax.random.key(0))
    assert params["head"]["w"].shape == (3, 1)
    frames = jnp.asarray(task.examples("valid")["x"])
    _, carries = task.stack(params["encoder"], frames[:, :10].reshape(5, 10, 64))
    ys, _ = task.stack(params["forecaster"], jnp.zeros((5, 10, 64)), carry=carries)
    maps = task.cell.unflatten(ys)  # [5, 10, 8, 8, 3]
    expected = maps @ params["head"]["w"][:, 0] + params["head"]["b"][0]
    np.testing.assert_allclose(
        task.predict_logits(params, frames), expected.reshape(5, 10, 64), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data.digit_size": 9}, r"digit_size=9 must be at most canvas_size=8"),
        ({"data.speed": -1.0}, r"speed=-1.0 must be >= 0"),
        ({"data.output_frames": 0}, r"output_frames=0 must be >= 1"),
        ({"model.architecture": "unet"}, r"architecture='unet'; valid: encoder_forecaster"),
        ({"model.block": "residual"}, r"block='residual': moving_digits builds plain stacks"),
    ],
)
def test_bad_settings_are_one_line(overrides, message):
    with pytest.raises(errors.ConfigError, match=message):
        _task(**overrides)


def test_a_conv_lstm_grid_that_is_not_the_canvas_is_refused():
    config = md_config.get_config(TINY)
    config.model.cell_options = {"spatial_shape": (4, 4)}
    with pytest.raises(errors.ConfigError, match=r"spatial_shape=\(4, 4\) must be the canvas"):
        validate.validate(config)
        md.MovingDigitsTask(config)
    with pytest.raises(ValueError, match="model='unet'; valid: convlstm, fc, conv3d"):
        md_config.get_config("model=unet")


def test_a_tiny_run_trains_resumes_and_reports(tmp_path):
    workdir = str(tmp_path / "md")
    config = f"experiments/configs/moving_digits.py:{TINY},num_steps=4,batch_size=2"
    flags = [
        f"--config={config}", f"--workdir={workdir}", "--config.data.num_valid=3",
        "--config.data.num_test=3", "--config.train.eval_every=2",
        "--config.train.checkpoint_every=2", "--config.train.log_every=2",
    ]  # fmt: skip
    tt.run_cli(flags)
    results = tt.results(workdir)
    test = results["test"]
    assert np.isfinite(test["mse_per_frame"]) and "mse_frame_10" in test
    # A list read back from config.json is the ConvLSTM's tuple option again.
    tt.run_cli(flags + ["--config.train.num_steps=6"])
