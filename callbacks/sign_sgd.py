from typing import Any, Union

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class SignSGD(keras.optimizers.Optimizer):
    """Sign gradient descent: every weight moves by exactly `learning_rate` per step.

    Without momentum the step is `-lr * sign(g)`. With `momentum = beta > 0`
    ("Signum") a buffer `m = beta * m + (1 - beta) * g` is kept and the step is
    `-lr * sign(m)`. A zero gradient (or buffer) leaves the weight in place.

    Args:
        learning_rate: float or schedule, the step size. Defaults to 0.001.
        momentum: float in `[0, 1)`. Defaults to 0 (plain SignSGD).
        **kwargs: the base `keras.optimizers.Optimizer` arguments
            (`weight_decay`, `clipnorm`, `use_ema`, ...).

    Example:

    >>> optimizer = SignSGD(learning_rate=0.1)
    >>> w = keras.Variable([1.0, 1.0, 1.0])
    >>> _ = optimizer.apply_gradients([(keras.ops.convert_to_tensor([3.0, -0.01, 0.0]), w)])
    >>> [round(float(value), 3) for value in w.numpy()]
    [0.9, 1.1, 1.0]

    References:
        Bernstein et al. 2018, "signSGD: Compressed Optimisation for
        Non-Convex Problems"; the memory-informed network notes (seed `001`).
    """

    def __init__(
        self,
        learning_rate: Union[float, keras.optimizers.schedules.LearningRateSchedule] = 0.001,
        momentum: float = 0.0,
        name: str = "sign_sgd",
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"`momentum` must be a float in [0, 1), got {momentum!r}.")
        self.momentum = momentum

    def build(self, variables: list) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum > 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.momentum > 0:
            buffer = self.momentums[self._get_variable_index(variable)]
            beta = ops.cast(self.momentum, variable.dtype)
            self.assign(buffer, beta * buffer + (1.0 - beta) * gradient)
            direction = ops.sign(buffer)
        else:
            direction = ops.sign(gradient)
        self.assign_sub(variable, lr * direction)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"momentum": self.momentum})
        return config
