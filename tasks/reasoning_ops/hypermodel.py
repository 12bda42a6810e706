"""The reasoning-operations network space as a keras-tuner `HyperModel`."""

import time
from typing import Optional, Sequence

import keras
import keras_tuner

from zoo.errors import DivergenceError
from zoo.tasks.reasoning_ops.config import (
    PROFILES,
    QUICK_NETWORKS,
    SEED_DATASETS,
    SEED_TASKS,
    Protocol,
    parse_network,
)
from zoo.tasks.reasoning_ops.data import output_width
from zoo.tasks.reasoning_ops.models import build_network
from zoo.tasks.reasoning_ops.protocol import Experiment, run_protocol


class ReasoningHyperModel(keras_tuner.HyperModel):
    """The seed's experiment space: one trial is one (task, dataset, network) experiment.

    Hyperparameters: `task`, `dataset` and `network` (a grid name such as
    `"dense_residual-2-relu"`, see `zoo.tasks.reasoning_ops.config.parse_network`), each a
    `Choice`. `build(hp)` returns the `ReasoningNet` for the task's output width, its initial
    weights fixed by `seed`; `fit(hp, model)` runs the seed's protocol on it (the learning-rate
    search, then the final run) and returns the metrics `accuracy` (the objective, to
    maximise), `loss`, `lr`, `global_step`, `diverged_lrs` and `wall_seconds`. An experiment
    that diverges (every rate, or the final run) raises `keras_tuner.errors.FailedTrialError`,
    so keras-tuner records the trial as failed with the reason, never as a score.

    Args:
        tasks: the task names to choose from.
        datasets: the dataset names to choose from.
        networks: the network grid names to choose from.
        protocol: the `Protocol` (default: the `quick` profile's).
        seed: the seed of the data and of the initial weights.

    Example (a user's own search over three networks on one task):

    ```python
    import keras_tuner
    from zoo.tasks.reasoning_ops import ReasoningHyperModel

    hypermodel = ReasoningHyperModel(tasks=["dot"], datasets=["random"],
                                     networks=["dense-1-linear", "multiply-1-linear",
                                               "dense_residual-2-relu"])
    tuner = keras_tuner.GridSearch(hypermodel, objective=keras_tuner.Objective("accuracy", "max"),
                                   directory="my_search")
    tuner.search()
    print(tuner.oracle.get_best_trials(1)[0].hyperparameters.values)
    ```
    """

    def __init__(
        self,
        tasks: Sequence[str] = SEED_TASKS,
        datasets: Sequence[str] = SEED_DATASETS,
        networks: Sequence[str] = QUICK_NETWORKS,
        protocol: Optional[Protocol] = None,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name in networks:
            parse_network(name)
        self.tasks = list(tasks)
        self.datasets = list(datasets)
        self.networks = list(networks)
        self.protocol = protocol or PROFILES["quick"]
        self.seed = seed

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        task = hp.Choice("task", self.tasks)
        hp.Choice("dataset", self.datasets)
        network, depth, activation = parse_network(hp.Choice("network", self.networks))
        return build_network(network, output_width(task), depth, activation, self.seed)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs) -> dict:
        """Runs the protocol on `model`; extra arguments (keras-tuner's callbacks) are not
        used: the protocol has no epochs to call back on."""
        started = time.time()
        experiment = Experiment(model, hp.get("task"), hp.get("dataset"), self.protocol, self.seed)
        try:
            result = run_protocol(experiment)
        except DivergenceError as error:
            raise keras_tuner.errors.FailedTrialError(f"diverged: {error}") from None
        result["wall_seconds"] = time.time() - started
        return result
