"""The training recipe: one resumable run of either model in a run folder.

Every epoch writes its history row, then commits a checkpoint (`checkpoints/ckpt-<epoch>.npz`:
the weights, the optimizer's variables and the set-min noise generator's state), through the
run lifecycle (`zoo.lifecycle`). A rerun of
the same command resumes from the committed epoch with the batches of `(seed, epoch)`, so an
interrupted run ends with the same history and weights as an uninterrupted one.
"""

from typing import Optional

import keras

from zoo.callbacks import SignSGD
from zoo.lifecycle import TrainingRun, TrainingState
from zoo.losses import SetMinRandomLoss
from zoo.runs import RunFolder, atomic_write

from .config import PIXELS, SIGNSGD_MOMENTUM, TASK, MemoryAEConfig
from .data import encode, epoch_batches, fit_pca, load_images, load_pca
from .measures import MemoryMeasures, SetMinMeasures, SigmaSchedule
from .models import MemoryInformedAE, SetMinAE
from .plots import draw_pictures

PCA_FILE = "pca.npz"


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


def training_state(model: keras.Model, loss) -> TrainingState:
    """Everything the next epoch depends on besides the data: weights, optimizer variables,
    and the set-min noise generator's state."""
    extra = {} if loss is None else {"noise_seed_state": loss.seed_generator.state}
    return TrainingState(model, extra=extra)


def train(
    config: MemoryAEConfig,
    run_path=None,
    *,
    given: Optional[dict] = None,
    images=None,
    verbose: Optional[int] = None,
    root="runs",
) -> RunFolder:
    """Trains (or resumes) one run; writes history, checkpoints, pictures and the model. The
    lifecycle (`zoo.lifecycle.TrainingRun`) keeps the run folder's promises.

    Args:
        config: the run's settings (on resume the saved config wins; see `RunFolder.open`).
        run_path: the run folder, or None for a new `root/memory-ae/<UTC time>`.
        given: the flags the user passed (None: all of `config`).
        images: `load_images(config.train_limit)`'s result, to share between runs.
        verbose: Keras's `fit` verbosity (None: a bar on a terminal, a line per epoch when
            piped).
        root: where a new folder goes when `run_path` is None.

    Returns:
        The (closed) `RunFolder`.

    Raises:
        DivergenceError: the loss became non-finite; the run is marked failed.
        Interrupted: a signal stopped the run after committing its epoch in flight.
    """
    with TrainingRun(TASK, config, run_path, given=given, root=root, verbose=verbose) as session:
        if session.finished:
            print(
                f"memory-ae: {session.run.path} is finished ({session.step} epochs); nothing to do."
            )
            return session.run
        _train(session, images)
    return session.run


def _train(session: TrainingRun, images) -> None:
    run, config = session.run, session.config
    (train_images, _), (test_images, test_labels) = images or load_images(config.train_limit)
    if run.file(PCA_FILE).exists():
        pca = load_pca(run.file(PCA_FILE))
    else:
        pca = fit_pca(config.code_dims, train_images)
        atomic_write(run.file(PCA_FILE), pca.save)
    train_codes = pca.transform(train_images)
    test = encode(pca, test_images, test_labels)

    model, loss = build_model(config)
    state = training_state(model, loss)
    first_epoch = session.restore(state)

    if config.model == "memory":
        targets = (train_images, train_images)
        measures = [MemoryMeasures(test.codes, test.images)]
    else:
        targets = train_images
        schedule = [SigmaSchedule(loss, config.epochs)] if config.constant_sigma is None else []
        measures = schedule + [SetMinMeasures(test.codes, test.images, loss)]
    batches, follow = epoch_batches(train_codes, targets, config.batch_size, config.seed)
    print(
        f"memory-ae: {config.describe()}; {model.count_params():,} parameters; "
        f"{session.describe_start()}; run folder {run.path}",
        flush=True,
    )
    if first_epoch < config.epochs:
        model.fit(
            batches,
            epochs=config.epochs,
            initial_epoch=first_epoch,
            shuffle=False,  # the batches' order is a function of (seed, epoch)
            callbacks=[follow, *session.callbacks(state, measures)],
            verbose=session.verbose,
        )
    run.save_model(model)
    draw_pictures(model, run, config, test)
    final = run.history().iloc[-1].to_dict()
    session.finish(
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
