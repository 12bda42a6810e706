import dataclasses
import argparse

import keras
import numpy as np
import pytest

from zoo.runs import RunFolder, add_config_arguments, check_config, config_from_args, matplotlib_agg


@dataclasses.dataclass
class DemoConfig:
    episodes: int = dataclasses.field(default=100, metadata={"help": "episodes to train"})
    learning_rate: float = 1e-4
    recipe: str = dataclasses.field(default="seed", metadata={"choices": ("seed", "improved")})
    in_memory: bool = False

    def __post_init__(self):
        check_config(self, {"episodes": (lambda v: v > 0, "a positive integer")})


def test_run_folder_files(tmp_path):
    run = RunFolder.create("demo", root=tmp_path)
    assert run.path.parent == tmp_path / "demo"
    run.save_config(DemoConfig(episodes=3))
    assert run.load_config()["episodes"] == 3
    run.save_metrics({"err": 0.5})
    run.save_metrics({"loss": 0.1})
    assert run.load_metrics() == {"err": 0.5, "loss": 0.1}
    plt = matplotlib_agg()
    figure, axis = plt.subplots()
    axis.plot([1, 2, 3])
    assert run.save_figure(figure, "curve").read_bytes()[:4] == b"\x89PNG"


def test_history_logger_keeps_finished_epochs_when_interrupted(tmp_path):
    run = RunFolder(tmp_path / "run")

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(KeyboardInterrupt):
        model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=5, verbose=0,
                  callbacks=[run.history_logger(schedule="lrd"), Interrupt()])
    history = run.history()
    assert list(history["epoch"]) == [1, 2]
    assert set(history["schedule"]) == {"lrd"} and "loss" in history


def test_history_gains_new_columns(tmp_path):
    run = RunFolder(tmp_path)
    run.append_history({"epoch": 1, "loss": 1.0})
    run.append_history({"epoch": 2, "loss": 0.5, "err": 0.1})
    history = run.history()
    assert list(history.columns) == ["epoch", "loss", "err"] and np.isnan(history["err"][0])


def test_cli_flags_from_a_config_dataclass():
    parser = add_config_arguments(argparse.ArgumentParser(), DemoConfig)
    args = parser.parse_args(["--episodes", "3", "--learning-rate", "0.5", "--recipe", "improved", "--in-memory"])
    assert config_from_args(DemoConfig, args) == DemoConfig(3, 0.5, "improved", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--recipe", "other"])
    with pytest.raises(ValueError, match="--episodes"):
        config_from_args(DemoConfig, parser.parse_args(["--episodes", "0"]))
