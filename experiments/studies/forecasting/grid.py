"""The forecasting study's grid: ETTh1 under the Informer protocol (LSTM, GRU, NLinear, the
seq2seq head), the classic series, and the LTSF protocol (the linear baselines, DLinear's first
release, SegRNN and its ablations, the look-back ablation)."""

from __future__ import annotations

from experiments.lab import Run

HORIZONS = (24, 48, 168, 336, 720)  # the Informer protocol's
LTSF_HORIZONS = (96, 192, 336, 720)  # the LTSF protocol's
LTSF_SEEDS = (0, 1, 2)


def ett_runs(features: str) -> list[Run]:
    """LSTM and GRU at every horizon; the multivariate runs at most 1,000 steps (the shared
    2-core machine)."""
    extra = ",num_steps=1000" if features == "M" else ""
    return [
        Run(f"ett_{features}_{h}_{cell}", config=f"ett.py:features={features},horizon={h},"
            f"cell={cell}{extra}")
        for h in HORIZONS
        for cell in ("lstm", "gru")
    ]  # fmt: skip


def ett_linear_runs() -> list[Run]:
    """NLinear in the Informer-protocol table (L = 96, one seed)."""
    return [
        Run(f"ett_{features}_{h}_nlinear",
            config=f"ltsf.py:model=nlinear,features={features},horizon={h},input_len=96")
        for features in ("S", "M")
        for h in HORIZONS
    ]  # fmt: skip


def ett_equal_runs() -> list[Run]:
    """Multivariate LSTM and GRU under NLinear's budget and stopping rule (batch 32, 10 epochs,
    validation after each, stop after 3 without a better valid MSE), each model with its own
    optimiser, 3 seeds each, NLinear's 3 seeds beside them (issue 36)."""
    runs = []
    for h in HORIZONS:
        for seed in LTSF_SEEDS:
            runs += [
                Run(f"ett_M_{h}_{cell}_equal_s{seed}", config=f"ett.py:features=M,horizon={h},"
                    f"cell={cell},epochs=10,batch_size=32,seed={seed}")
                for cell in ("lstm", "gru")
            ]  # fmt: skip
            runs.append(
                Run(f"ett_M_{h}_nlinear_s{seed}", config=f"ltsf.py:model=nlinear,features=M,"
                    f"horizon={h},input_len=96,seed={seed}")
            )  # fmt: skip
    return runs


def seq2seq_runs() -> list[Run]:
    """The decoder head next to the direct head, LSTM, short horizons."""
    return [
        Run(f"ett_{f}_{h}_lstm_seq2seq", config=f"ett.py:features={f},horizon={h},cell=lstm,"
            "head=seq2seq")
        for f in ("S", "M")
        for h in (24, 168)
    ]  # fmt: skip


def example_runs() -> list[Run]:
    return [Run("airline_lstm", config="airline.py"), Run("sunspots_lstm", config="sunspots.py")]


def ltsf_runs(models: tuple[str, ...], features: str, dataset: str = "etth1") -> list[Run]:
    """The LTSF protocol's linear baselines: seeds per trained model; the last-value forecast
    has nothing random and runs once."""
    prefix = "ltsf" if dataset == "etth1" else f"ltsf_{dataset}"
    runs = []
    for model in models:
        seeds = (0,) if model == "repeat" else LTSF_SEEDS
        for h in LTSF_HORIZONS:
            for seed in seeds:
                suffix = "" if model == "repeat" else f"_s{seed}"
                runs.append(
                    Run(
                        f"{prefix}_{model}_{features}_{h}{suffix}",
                        config=f"ltsf.py:dataset={dataset},model={model},features={features},"
                        f"horizon={h},seed={seed}" + (",epochs=1" if model == "repeat" else ""),
                    )
                )
    return runs


def ltsf_linear() -> list[Run]:
    """ETTh1 multivariate and univariate (OT)."""
    return ltsf_runs(("repeat", "nlinear", "dlinear", "linear"), "M") + ltsf_runs(
        ("repeat", "nlinear", "dlinear"), "S"
    )


def ltsf_exchange() -> list[Run]:
    """Exchange-Rate, multivariate (8 currencies)."""
    return ltsf_runs(("repeat", "nlinear", "dlinear", "linear"), "M", "exchange")


def ltsf_dlinear_init() -> list[Run]:
    """DLinear's first release (cure-lab/LTSF-Linear 04ffd8d): every weight starting at 1/L, and
    its Exchange script's H = 720 rate (5e-3, today 5e-4)."""
    first_lr = [
        Run(f"ltsf_exchange_dlinear{init}_M_720_lr0.005_s{seed}",
            config=f"ltsf.py:dataset=exchange,model=dlinear,features=M,horizon=720,seed={seed},"
            f"init={'mean' if init else 'torch'},learning_rate=0.005")
        for init in ("_meaninit", "")
        for seed in LTSF_SEEDS
    ]  # fmt: skip
    return [
        Run(r.name.replace("_dlinear_", "_dlinear_meaninit_"), config=f"{r.config},init=mean")
        for dataset in ("etth1", "exchange")
        for r in ltsf_runs(("dlinear",), "M", dataset)
    ] + first_lr


def ltsf_segrnn() -> list[Run]:
    """SegRNN (experiments/configs/segrnn.py): univariate ETTh1 with the GRU, LSTM and minGRU and
    Exchange-Rate with the GRU, every horizon and seed; and the multivariate ablations, where a
    run takes 40-100 min here: this library's GRU init at H = 96 (3 seeds), the LSTM and minGRU
    in its place at H = 96 and 720, seed 0."""
    every, seeds = LTSF_HORIZONS, LTSF_SEEDS
    settings = [  # (cell, features, dataset, seeds, horizons)
        ("gru", "M", "etth1", seeds, (96,)),
        ("lstm", "M", "etth1", (0,), (96, 720)),
        ("mingru", "M", "etth1", (0,), (96, 720)),
        ("gru", "S", "etth1", seeds, every),
        ("gru", "M", "exchange", seeds, every),
        ("lstm", "S", "etth1", seeds, every),
        ("mingru", "S", "etth1", seeds, every),
    ]
    return [
        Run(f"segrnn_{'' if dataset == 'etth1' else dataset + '_'}{cell}_{features}_{h}_s{seed}",
            config=f"segrnn.py:dataset={dataset},cell={cell},features={features},horizon={h},"
            f"seed={seed}")
        for cell, features, dataset, cell_seeds, horizons in settings
        for h in horizons
        for seed in cell_seeds
    ]  # fmt: skip


def ltsf_lookback() -> list[Run]:
    """Where SegRNN's gain comes from: NLinear and DLinear at SegRNN's look-back (720) and
    univariate SegRNN at the linear models' (336), ETTh1, 3 seeds; the test targets are the same
    rows at either look-back (the test split starts L rows early)."""
    linear = [
        Run(f"ltsf_{model}_{features}_{h}_L720_s{seed}",
            config=f"ltsf.py:model={model},features={features},horizon={h},input_len=720,"
            f"seed={seed}")
        for model, features in (("nlinear", "M"), ("dlinear", "M"), ("nlinear", "S"))
        for h in LTSF_HORIZONS
        for seed in LTSF_SEEDS
    ]  # fmt: skip
    return linear + [
        Run(f"segrnn_gru_S_{h}_L336_s{seed}",
            config=f"segrnn.py:features=S,horizon={h},input_len=336,seed={seed}")
        for h in LTSF_HORIZONS
        for seed in LTSF_SEEDS
    ]  # fmt: skip


def ltsf_segrnn_init() -> list[Run]:
    """The reproduction: the GRU with the authors' (PyTorch's) init, ETTh1 multivariate."""
    return [
        Run(f"segrnn_gru_torchinit_M_{h}_s{seed}",
            config=f"segrnn.py:horizon={h},torch_init=True,seed={seed}")
        for h in LTSF_HORIZONS
        for seed in LTSF_SEEDS
    ]  # fmt: skip


def ltsf() -> list[Run]:
    """The whole LTSF table, the cheap baselines first."""
    cheap = ltsf_linear() + ltsf_exchange() + ltsf_dlinear_init()
    return cheap + ltsf_segrnn_init() + ltsf_segrnn() + ltsf_lookback()
