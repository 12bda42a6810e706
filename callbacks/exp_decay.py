import keras
from keras.optimizers.schedules import LearningRateSchedule


@keras.saving.register_keras_serializable(package="zoo")
class ExpDecay(keras.callbacks.Callback):
    """Per-epoch exponential learning-rate decay: `lr_e = max(floor, lr_0 * rate**e)`.

    Epoch 0 trains at `lr_0`, the optimizer's learning rate when training
    starts (or `initial_learning_rate` when given, so a resumed run with
    `initial_epoch > 0` lands on the same curve). The rate in force is logged
    as `learning_rate` in `history` every epoch.

    Args:
        rate: float in `(0, 1]`, the per-epoch factor (0.9 in the lrd seed,
            0.98 per ArgMaxNet episode).
        floor: optional lower bound of the learning rate.
        initial_learning_rate: optional `lr_0`; defaults to the optimizer's
            learning rate at `on_train_begin`.
        verbose: 1 prints the new rate at every epoch.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> history = model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=3,
    ...                     callbacks=[ExpDecay(0.5)], verbose=0)
    >>> [round(lr, 3) for lr in history.history["learning_rate"]]
    [0.1, 0.05, 0.025]

    References:
        Smith et al. 2017, "Don't Decay the Learning Rate, Increase the Batch
        Size" (arXiv 1711.00489), seed `002`.
    """

    def __init__(self, rate, floor=None, initial_learning_rate=None, verbose=0):
        super().__init__()
        if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f"`rate` must be in (0, 1], got {rate!r}.")
        if floor is not None and floor < 0:
            raise ValueError(f"`floor` must be >= 0, got {floor!r}.")
        if initial_learning_rate is not None and initial_learning_rate <= 0:
            raise ValueError(f"`initial_learning_rate` must be > 0, got {initial_learning_rate!r}.")
        self.rate = rate
        self.floor = floor
        self.initial_learning_rate = initial_learning_rate
        self.verbose = verbose
        self._lr0 = initial_learning_rate

    def learning_rate_at(self, epoch):
        lr = self._lr0 * self.rate**epoch
        return max(lr, self.floor) if self.floor is not None else lr

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if isinstance(optimizer._learning_rate, LearningRateSchedule):
            raise ValueError(
                "ExpDecay needs an optimizer with a float `learning_rate`, but it holds a "
                f"{type(optimizer._learning_rate).__name__} schedule."
            )
        if self._lr0 is None:
            self._lr0 = float(optimizer.learning_rate.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.learning_rate_at(epoch)
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"ExpDecay: epoch {epoch + 1} learning rate {lr:.6g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())

    def get_config(self):
        return {
            "rate": self.rate,
            "floor": self.floor,
            "initial_learning_rate": self.initial_learning_rate,
            "verbose": self.verbose,
        }
