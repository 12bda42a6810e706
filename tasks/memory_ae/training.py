"""The training recipe: one resumable run of either model in a run folder.

Every epoch writes its history row, then commits a checkpoint (`checkpoints/ckpt-<epoch>.npz`:
the weights, the optimizer's variables and the set-min noise generator's state). A rerun of
the same command resumes from the committed epoch with the batches of `(seed, epoch)`, so an
interrupted run ends with the same history and weights as an uninterrupted one.
"""

from pathlib import Path
from typing import Optional

import keras
import numpy as np

from zoo.callbacks import SignSGD
from zoo.errors import CorruptFileError, DivergenceError
from zoo.losses import SetMinRandomLoss
from zoo.runs import RunFolder, atomic_write, crash_point, load_npz
from zoo.training import RunHistory, StopOnNonFinite, WallTime

from .config import PIXELS, SIGNSGD_MOMENTUM, TASK, MemoryAEConfig
from .data import EpochBatches, encode, fit_pca, load_images, load_pca
from .measures import MemoryMeasures, SetMinMeasures, SigmaSchedule
from .models import MemoryInformedAE, SetMinAE
from .plots import draw_pictures

PCA_FILE = "pca.npz"
DIVERGENCE_HINT = "the learning rate is likely too high"


def make_optimizer(config: MemoryAEConfig) -> keras.optimizers.Optimizer:
    """Adam, or SignSGD with momentum 0.9, at `config.learning_rate`."""
    if config.optimizer == "signsgd":
        return SignSGD(config.learning_rate, momentum=SIGNSGD_MOMENTUM)
    return keras.optimizers.Adam(config.learning_rate)


def build_model(config: MemoryAEConfig):
    """`(model, loss)`: the compiled, built model (seeded by `config.seed`) and its
    `SetMinRandomLoss` (None for the memory-informed AE)."""
    keras.utils.set_random_seed(config.seed)
    if config.model == "memory":
        model = MemoryInformedAE(config.slots, PIXELS, config.hidden, config.floss_weight)
        loss = None
        model.compile(make_optimizer(config), loss=["mse", "mse"], jit_compile=True)
    else:
        model = SetMinAE(config.subnets, PIXELS, config.hidden)
        sigma = config.constant_sigma
        loss = SetMinRandomLoss(sigma=1.0 if sigma is None else sigma, seed=config.seed)
        model.compile(make_optimizer(config), loss=loss, jit_compile=True)
    model.build((None, config.code_dims))
    model.optimizer.build(model.trainable_variables)
    return model, loss


def training_state(model: keras.Model, loss) -> dict:
    """Everything the next epoch depends on besides the data: weights, optimizer variables,
    and the set-min noise generator's state."""
    arrays = {f"weight_{i}": weight for i, weight in enumerate(model.get_weights())}
    for i, variable in enumerate(model.optimizer.variables):
        arrays[f"optimizer_{i}"] = keras.ops.convert_to_numpy(variable)
    if loss is not None:
        arrays["noise_seed_state"] = keras.ops.convert_to_numpy(loss.seed_generator.state)
    return arrays


def restore_training_state(model: keras.Model, loss, path: Path) -> None:
    """Loads a checkpoint written from `training_state`; `CorruptFileError` naming the file
    when it is unreadable or does not fit the model."""
    arrays = load_npz(path)
    weights = [arrays.get(f"weight_{i}") for i in range(len(model.weights))]
    optimizer = [arrays.get(f"optimizer_{i}") for i in range(len(model.optimizer.variables))]
    expected = len(weights) + len(optimizer) + (loss is not None)
    if len(arrays) != expected or any(value is None for value in weights + optimizer):
        raise CorruptFileError(path, "does not hold this model's training state")
    targets = list(model.weights) + list(model.optimizer.variables)
    for variable, value in zip(targets, weights + optimizer):
        if tuple(variable.shape) != value.shape:
            raise CorruptFileError(
                path, f"{variable.path} has shape {value.shape}, expected {tuple(variable.shape)}"
            )
        variable.assign(value)
    if loss is not None:
        loss.seed_generator.state.assign(arrays["noise_seed_state"])


class EpochCheckpoint(keras.callbacks.Callback):
    """Commits the training state after every epoch (after `RunHistory` wrote its row).

    Also the fault-injection point `train-batch`, called after every training batch.

    Args:
        run: the `RunFolder`.
        loss: the `SetMinRandomLoss`, or None.
    """

    def __init__(self, run: RunFolder, loss=None):
        super().__init__()
        self.run = run
        self.loss = loss

    def on_train_batch_end(self, batch, logs=None):
        crash_point("train-batch")

    def on_epoch_end(self, epoch, logs=None):
        arrays = training_state(self.model, self.loss)
        self.run.save_checkpoint(
            epoch + 1,
            lambda path: np.savez(path, **arrays),
            ".npz",
            {"wall_seconds": float((logs or {}).get("wall_seconds", 0.0))},
        )


def train(
    config: MemoryAEConfig,
    run_path=None,
    *,
    given: Optional[dict] = None,
    images=None,
    verbose="auto",
    root="runs",
) -> RunFolder:
    """Trains (or resumes) one run; writes history, checkpoints, pictures and the model.

    Args:
        config: the run's settings (on resume the saved config wins; see `RunFolder.open`).
        run_path: the run folder, or None for a new `root/memory-ae/<UTC time>`.
        given: the flags the user passed (None: all of `config`).
        images: `load_images(config.train_limit)`'s result, to share between runs.
        verbose: Keras's `fit` verbosity.
        root: where a new folder goes when `run_path` is None.

    Returns:
        The (closed) `RunFolder`.

    Raises:
        DivergenceError: the loss became non-finite; the run is marked failed.
    """
    with RunFolder.open(run_path, TASK, config, given=given, root=root) as run:
        config = run.config
        checkpoint = run.load_checkpoint()
        if run.status == "finished" and checkpoint is not None and checkpoint.step >= config.epochs:
            print(f"memory-ae: {run.path} is finished ({checkpoint.step} epochs); nothing to do.")
            return run
        run.mark_running()
        try:
            _train(run, config, checkpoint, images, verbose)
        except DivergenceError as error:
            run.mark_failed(str(error))
            raise
    return run


def _train(run: RunFolder, config: MemoryAEConfig, checkpoint, images, verbose) -> None:
    (train_images, _), (test_images, test_labels) = images or load_images(config.train_limit)
    if run.file(PCA_FILE).exists():
        pca = load_pca(run.file(PCA_FILE))
    else:
        pca = fit_pca(config.code_dims, train_images)
        atomic_write(run.file(PCA_FILE), pca.save)
    train_codes = pca.transform(train_images)
    test = encode(pca, test_images, test_labels)

    model, loss = build_model(config)
    first_epoch, wall_seconds = 0, 0.0
    if checkpoint is not None:
        restore_training_state(model, loss, checkpoint.path)
        first_epoch = checkpoint.step
        wall_seconds = float(checkpoint.state.get("wall_seconds", 0.0))
    run.truncate_history("epoch", first_epoch)

    if config.model == "memory":
        targets = (train_images, train_images)
        measures = [MemoryMeasures(test.codes, test.images)]
    else:
        targets = train_images
        schedule = [SigmaSchedule(loss, config.epochs)] if config.constant_sigma is None else []
        measures = schedule + [SetMinMeasures(test.codes, test.images, loss)]
    batches = EpochBatches(train_codes, targets, config.batch_size, config.seed, first_epoch)
    callbacks = [
        StopOnNonFinite(DIVERGENCE_HINT),
        *measures,
        WallTime(wall_seconds),
        RunHistory(run),
        EpochCheckpoint(run, loss),
    ]
    if first_epoch >= config.epochs:
        action = f"all {config.epochs} epochs committed, saving the model"
    elif first_epoch:
        action = f"resuming at epoch {first_epoch + 1} of {config.epochs}"
    else:
        action = f"starting, {config.epochs} epochs"
    print(
        f"memory-ae: {config.describe()}; {model.count_params():,} parameters; {action}; "
        f"run folder {run.path}",
        flush=True,
    )
    if first_epoch < config.epochs:
        model.fit(
            batches,
            epochs=config.epochs,
            initial_epoch=first_epoch,
            shuffle=False,  # the batches' order is EpochBatches's, a function of (seed, epoch)
            callbacks=callbacks,
            verbose=verbose,
        )
    run.save_model(model)
    draw_pictures(model, run, config, test)
    final = run.history().iloc[-1].to_dict()
    run.mark_finished(
        **{key: value for key, value in final.items() if key != "epoch"}, epochs=int(final["epoch"])
    )
    summary = (
        f"test MSE memory {final['test_mse_memory']:.4f}, informed "
        f"{final['test_mse_informed']:.4f}, slots used {int(final['slots_used'])}"
        if config.model == "memory"
        else f"best-subnet test MSE {final['test_mse_best_subnet']:.4f}, subnets winning "
        f"{int(final['subnets_winning'])} of {config.subnets}"
    )
    print(f"memory-ae: {int(final['epoch'])} epochs, {summary}; run folder {run.path}", flush=True)
