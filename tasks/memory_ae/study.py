"""Do set-min subnets specialise? And the memory-informed AE's open ideas (issue 15).

One command trains a list of conditions on MNIST and prints one table per family:

- set-min conditions, named `dl<code size>-<variant>`: K subnets (`SetMinAE`) decode the PCA
  code; the variants are `single` (one decoder of the same size, plain MSE: the reference),
  `schedule` (`SetMinRandomLoss`, sigma 1 : 10 : 100 over 1 : 2 : 1 of the run, the notes'),
  `reverse` (100 : 10 : 1), `sigma<x>` (a constant sigma, e.g. `sigma0`, `sigma10`), `rwta`
  (`RelaxedWinnerTakesAllLoss`, Rupprecht et al. 2017) and `smcl` (`MultipleChoiceLoss`, the
  oracle loss of Lee et al. 2016, which is set-min at sigma 0). Measured on the test images:
  the best subnet's MSE, each subnet's share of wins (the winner of an image is the subnet that
  reconstructs it best), the mutual information in bits between the winner and the digit, and
  the mean pairwise RMS distance between subnets' outputs relative to the per-pixel RMS error
  `sqrt(best-subnet MSE)`; plus a picture of every subnet's outputs.
- memory conditions, named `memory-<adam|signsgd>-<glorot|samples|kmeans>[-pretrain]`:
  `MemoryInformedAE` with its memory array from the layer's initialiser, random training
  images or k-means centroids, trained jointly (the current training) or in the pretraining
  phases of `memory_init.PRETRAIN_PHASES`. Measured: both outputs' test MSE, slots used and
  the selection perplexity.

Every condition is committed when done (`conditions/<name>.json`, its picture and its history
rows): a rerun of the same command skips finished conditions and retrains an interrupted one.

The settings and conditions are in `study_config`, the measures in `study_measures`, the
command in `study_cli`; this module trains, draws and tabulates. Keras is imported when a
study runs.
"""

import dataclasses
import time
from typing import Optional

import numpy as np

from .study_config import (
    PIXELS,
    SCHEDULES,
    SIGNSGD_MOMENTUM,
    TASK,
    Condition,
    StudyConfig,
    parse_condition,
)
from .study_measures import meets_goal, specialisation, subnet_errors


class _Data:
    """MNIST images, loaded once; PCA codes per code size, fitted on the training images."""

    def __init__(self, config: StudyConfig):
        from .data import fit_pca, load_images

        (self.train_images, _), (test_images, test_labels) = load_images(config.train_limit)
        limit = config.test_limit or len(test_images)
        self.test_images, self.test_labels = test_images[:limit], test_labels[:limit]
        self._fit_pca = fit_pca
        self._codes = {}

    def codes(self, code_dims: int):
        """`(train codes, test codes)` of the `code_dims`-dimensional whitened PCA."""
        if code_dims not in self._codes:
            pca = self._fit_pca(code_dims, self.train_images)
            self._codes[code_dims] = (
                pca.transform(self.train_images).astype("float32"),
                pca.transform(self.test_images).astype("float32"),
            )
        return self._codes[code_dims]


def describe(condition: Condition, config: StudyConfig) -> str:
    """The condition in words, for titles and the log."""
    if condition.family == "memory":
        optimizer = (
            f"Adam {config.learning_rate:g}"
            if condition.variant == "adam"
            else f"SignSGD {config.signsgd_learning_rate:g}"
        )
        init = {
            "glorot": "Glorot memory",
            "samples": "memory = training images",
            "kmeans": "memory = k-means centroids",
        }[condition.init]
        training = (
            "pretrained memory, then candidates, then joint"
            if condition.pretrain
            else ("joint training")
        )
        return f"MemoryInformedAE dl={condition.code_dims}, {optimizer}, {init}, {training}"
    if condition.variant == "sigma":
        return (
            f"SetMinAE dl={condition.code_dims}, {config.subnets} subnet(s), set-min, "
            f"sigma {condition.sigma:g}"
        )
    loss = {
        "single": "one decoder, MSE",
        "schedule": "set-min, sigma 1 : 10 : 100 over 1 : 2 : 1",
        "reverse": "set-min, sigma 100 : 10 : 1 over 1 : 2 : 1",
        "rwta": f"relaxed WTA, eps {config.relaxation:g}",
        "smcl": "sMCL (min loss)",
    }[condition.variant]
    subnets = 1 if condition.variant == "single" else config.subnets
    return f"SetMinAE dl={condition.code_dims}, {subnets} subnet(s), {loss}"


def _optimizer(name: str, config: StudyConfig):
    import keras

    from zoo.callbacks import SignSGD

    if name == "signsgd":
        return SignSGD(config.signsgd_learning_rate, momentum=SIGNSGD_MOMENTUM)
    return keras.optimizers.Adam(config.learning_rate)


def train_setmin(condition: Condition, config: StudyConfig, data: _Data, verbose=0):
    """Trains one set-min condition; returns `(measures, history rows, test outputs)`."""
    import keras

    from zoo.losses import MultipleChoiceLoss, RelaxedWinnerTakesAllLoss, SetMinRandomLoss
    from zoo.training import StopOnNonFinite

    from .data import epoch_batches
    from .measures import SigmaSchedule
    from .models import SetMinAE

    train_codes, test_codes = data.codes(condition.code_dims)
    keras.utils.set_random_seed(config.seed)
    subnets = 1 if condition.variant == "single" else config.subnets
    model = SetMinAE(subnets, PIXELS, config.hidden)
    callbacks = [StopOnNonFinite("the learning rate is likely too high")]
    if condition.variant in ("single", "smcl"):
        loss = MultipleChoiceLoss()
    elif condition.variant == "rwta":
        loss = RelaxedWinnerTakesAllLoss(config.relaxation)
    else:
        sigma = condition.sigma if condition.variant == "sigma" else 0.0
        loss = SetMinRandomLoss(sigma=sigma, seed=config.seed)
        if condition.variant in SCHEDULES:
            stages = SCHEDULES[condition.variant]
            callbacks.append(SigmaSchedule(loss, config.setmin_epochs, stages))
    model.compile(_optimizer("adam", config), loss=loss, jit_compile=True)
    batches, follow = epoch_batches(train_codes, data.train_images, config.batch_size, config.seed)
    history = model.fit(
        batches,
        epochs=config.setmin_epochs,
        shuffle=False,
        callbacks=[follow, *callbacks],
        verbose=verbose,
    )
    rows = [
        {"epoch": epoch + 1, "loss": value}
        for epoch, value in zip(history.epoch, history.history["loss"])
    ]
    if condition.variant in SCHEDULES:
        for row in rows:
            row["sigma"] = callbacks[-1].sigma_at(row["epoch"] - 1)
    outputs = model.predict(test_codes, batch_size=1000, verbose=0)
    return specialisation(outputs, data.test_images, data.test_labels), rows, outputs


def train_memory(condition: Condition, config: StudyConfig, data: _Data, verbose=0):
    """Trains one memory condition; returns `(measures, history rows, test outputs)`."""
    import keras
    from keras import ops

    from zoo.training import StopOnNonFinite

    from .data import epoch_batches
    from .measures import MemoryMeasures, selection_perplexity, slots_used
    from .memory_init import (
        JOINT_ONLY,
        PRETRAIN_PHASES,
        fit_memory_ae,
        initial_memory,
        set_memory,
    )
    from .models import MemoryInformedAE

    train_codes, test_codes = data.codes(condition.code_dims)
    keras.utils.set_random_seed(config.seed)
    model = MemoryInformedAE(config.slots, PIXELS, config.hidden)
    model.build((None, condition.code_dims))
    pictures = initial_memory(condition.init, data.train_images, config.slots, config.seed)
    if pictures is not None:
        set_memory(model, pictures)
    targets = (data.train_images, data.train_images)
    batches, follow = epoch_batches(train_codes, targets, config.batch_size, config.seed)
    rows = fit_memory_ae(
        model,
        batches,
        config.memory_epochs,
        lambda: _optimizer(condition.variant, config),
        PRETRAIN_PHASES if condition.pretrain else JOINT_ONLY,
        [
            follow,
            StopOnNonFinite("the learning rate is likely too high"),
            MemoryMeasures(test_codes, data.test_images),
        ],
        verbose,
    )
    memory, informed = model.predict(test_codes, batch_size=1000, verbose=0)
    selection = ops.convert_to_numpy(model.selection(test_codes))
    memory_array = ops.convert_to_numpy(ops.sigmoid(model.memory.memory))
    measures = {
        "test_mse_memory": float(np.mean((memory - data.test_images) ** 2)),
        "test_mse_informed": float(np.mean((informed - data.test_images) ** 2)),
        "slots_used": slots_used(selection),
        "selection_perplexity": selection_perplexity(selection),
    }
    return measures, rows, (memory, informed, memory_array)


def picture_columns(labels: np.ndarray, per_digit: int = 2) -> np.ndarray:
    """Indices of the first `per_digit` test images of every digit, digit by digit."""
    picks = [np.flatnonzero(labels == digit)[:per_digit] for digit in range(10)]
    return np.concatenate(picks)


def draw_condition(
    run, condition: Condition, config: StudyConfig, data: _Data, measures, outputs
) -> str:
    """Writes `<condition>.png`: rows = target and each subnet (memory conditions: target,
    memory, memory-informed, the memory array), columns = test digits; the best subnet of
    each column is framed in red. Returns the file name."""
    from zoo.runs import matplotlib_agg

    plt = matplotlib_agg()
    columns = picture_columns(data.test_labels)
    if condition.family == "setmin":
        rows = [data.test_images[columns]] + [outputs[columns, k] for k in range(outputs.shape[1])]
        names = ["target"] + [
            f"subnet {k} ({measures[f'win_share_{k}']:.0%} wins)" for k in range(outputs.shape[1])
        ]
        winners = np.argmin(subnet_errors(outputs[columns], data.test_images[columns]), axis=1)
        summary = (
            f"best-subnet MSE {measures['best_subnet_mse']:.4f}, winner/digit information "
            f"{measures['winner_class_bits']:.2f} bits, pairwise RMS distance "
            f"{measures['distance_to_error']:.2f} x RMS error"
        )
    else:
        memory, informed, memory_array = outputs
        rows = [data.test_images[columns], memory[columns], informed[columns], memory_array]
        names = ["target", "memory output", "memory-informed", "memory array sigmoid(M)"]
        winners = None
        summary = (
            f"test MSE memory {measures['test_mse_memory']:.4f}, informed "
            f"{measures['test_mse_informed']:.4f}, slots used {measures['slots_used']}, "
            f"perplexity {measures['selection_perplexity']:.2f}"
        )
    width = len(columns)
    figure, axes = plt.subplots(
        len(rows), width, figsize=(0.6 * width + 1.6, 0.62 * len(rows) + 0.9), squeeze=False
    )
    for row, pictures in enumerate(rows):
        for column in range(width):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(pictures):
                axis.imshow(pictures[column].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            else:
                axis.axis("off")
            if winners is not None and row > 0 and winners[column] == row - 1:
                for spine in axis.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2)
        axes[row, 0].set_ylabel(names[row], rotation=0, ha="right", va="center", fontsize=8)
    figure.suptitle(
        f"{condition.name}: {describe(condition, config)}\n{summary}\n"
        f"columns: test images, two per digit 0-9"
        + ("; red frame: the subnet that reconstructs it best" if winners is not None else ""),
        fontsize=8,
        y=0.99,
        va="bottom",  # above the pictures, however few rows there are
    )
    figure.subplots_adjust(wspace=0.05, hspace=0.05, top=0.98)
    run.save_figure(figure, condition.name)
    return f"{condition.name}.png"


def study_tables(rows: list) -> dict:
    """`{"setmin": DataFrame, "memory": DataFrame}` of the finished conditions' rows, with the
    set-min rows compared to the single decoder of their code size."""
    import pandas as pd

    setmin = [dict(row) for row in rows if row["family"] == "setmin"]
    singles = {
        row["code_dims"]: row["best_subnet_mse"] for row in setmin if row["variant"] == "single"
    }
    for row in setmin:
        single = singles.get(row["code_dims"])
        row["mse_vs_single"] = row["best_subnet_mse"] / single if single else None
        row["goal_met"] = meets_goal(row, single)
    memory = [dict(row) for row in rows if row["family"] == "memory"]
    setmin_columns = [
        "condition", "best_subnet_mse", "mse_vs_single", "winner_class_bits",
        "pairwise_rms_distance", "rms_error", "distance_to_error", "subnets_winning",
        "win_shares", "goal_met", "epochs", "wall_seconds",
    ]  # fmt: skip
    memory_columns = [
        "condition", "test_mse_memory", "test_mse_informed", "slots_used",
        "selection_perplexity", "epochs", "wall_seconds",
    ]  # fmt: skip
    return {
        "setmin": pd.DataFrame(setmin, columns=setmin_columns),
        "memory": pd.DataFrame(memory, columns=memory_columns),
    }


def run_study(
    config: StudyConfig, run_path=None, *, given: Optional[dict] = None, verbose=0, root="runs"
) -> dict:
    """Trains every condition not yet finished in the study folder; writes and prints the
    tables (`setmin.csv`, `memory.csv`) of the conditions listed. Returns the tables.

    Args:
        config: the study's settings. On a rerun `config.conditions` may differ from the
            first run's (finished conditions are reused, new ones trained); every other
            setting must equal the folder's (`ResumeMismatchError` otherwise).
        run_path: the study folder, or None for a new `root/memory-ae-study/<UTC time>`.
        given: the flags the user passed (None: all of `config`).
        verbose: Keras's `fit` verbosity.
        root: where a new folder goes when `run_path` is None.
    """
    from zoo.config import config_to_dict
    from zoo.errors import DivergenceError
    from zoo.lifecycle import tracked
    from zoo.runs import RunFolder, read_json

    # The condition list only selects what to train and show: it may change between reruns
    # (finished conditions are reused); every other setting must match the folder's.
    settings = dict(config_to_dict(config) if given is None else given)
    settings.pop("conditions", None)
    with RunFolder.open(run_path, TASK, config, given=settings, root=root) as run, tracked(run):
        config = dataclasses.replace(run.config, conditions=config.conditions)
        (run.path / "conditions").mkdir(exist_ok=True)
        data, rows = None, []
        for name in config.conditions:
            condition = parse_condition(name, config.memory_code_dims)
            record = run.file(f"conditions/{name}.json")
            if record.exists():
                rows.append(read_json(record))
                print(f"memory-ae study: {name} finished earlier; skipped", flush=True)
                continue
            data = data or _Data(config)
            run.truncate_history("epoch", 0, where={"condition": name})
            print(f"memory-ae study: {name}: {describe(condition, config)}", flush=True)
            started = time.perf_counter()
            train = train_setmin if condition.family == "setmin" else train_memory
            try:
                measures, history, outputs = train(condition, config, data, verbose)
            except DivergenceError as error:
                raise DivergenceError(f"condition {name}: {error}") from None
            seconds = time.perf_counter() - started
            picture = draw_condition(run, condition, config, data, measures, outputs)
            run.append_history_rows([{"condition": name, **row} for row in history])
            row = {
                "condition": name,
                "family": condition.family,
                "code_dims": condition.code_dims,
                "variant": condition.variant,
                "description": describe(condition, config),
                "epochs": config.setmin_epochs
                if condition.family == "setmin"
                else config.memory_epochs,
                "wall_seconds": round(seconds, 1),
                "picture": picture,
                **measures,
            }
            if condition.family == "setmin":
                shares = [value for key, value in measures.items() if key.startswith("win_share_")]
                row["win_shares"] = "/".join(f"{share:.2f}" for share in shares)
            run.write_json(f"conditions/{name}.json", row)  # the condition's commit point
            rows.append(row)
            print(f"memory-ae study: {name} done in {seconds:.0f} s: " + _summary(row), flush=True)
        tables = study_tables(rows)
        for family, table in tables.items():
            if len(table):
                run.write_csv(f"{family}.csv", table)
                print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        setmin = tables["setmin"]
        met = list(setmin.loc[setmin["goal_met"].astype(bool), "condition"])
        run.mark_finished(conditions=list(config.conditions), goal_met=met)
        print(
            f"memory-ae study: {len(rows)} conditions; goal met by "
            f"{', '.join(met) if len(met) else 'none'}; run folder {run.path}",
            flush=True,
        )
    return tables


def _summary(row: dict) -> str:
    if row["family"] == "setmin":
        return (
            f"best-subnet MSE {row['best_subnet_mse']:.4f}, {row['winner_class_bits']:.2f} "
            f"bits, distance {row['distance_to_error']:.2f} x RMS error, "
            f"wins {row['win_shares']}"
        )
    return (
        f"MSE memory {row['test_mse_memory']:.4f}, informed {row['test_mse_informed']:.4f}, "
        f"slots {row['slots_used']}, perplexity {row['selection_perplexity']:.2f}"
    )
