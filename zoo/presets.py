"""Trained weights shipped with the zoo, loaded by name: `from_preset("argmax-seed")`.

Each preset is a `.keras` file in the package (`zoo/preset_weights/`), produced by a real
training run of a README command, with its sha256 recorded here and checked on every load: a
file that differs (damaged, or replaced) is a one-line `CorruptFileError`, never a model with
other weights. `zoo presets` lists them with how each was made.

The task models need TensorFlow: load presets on Keras's TensorFlow backend.

Example:

>>> from zoo.presets import PRESETS
>>> sorted(PRESETS)
['argmax-improved', 'argmax-seed', 'mnist-cnn-ibs-equivalent', 'mnist-cnn-lrd']
>>> PRESETS["argmax-seed"].model
'ArgMaxNet'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from zoo.errors import CorruptFileError, UsageError

WEIGHTS_PACKAGE = "zoo.preset_weights"


@dataclass(frozen=True)
class Preset:
    """A shipped `.keras` file and where it came from.

    Attributes:
        file: the file name in `zoo/preset_weights/`.
        sha256: the file's sha256, checked before it is loaded.
        task: the `zoo` task that trained it.
        model: the class of the saved model.
        command: the command that produced it (the README's).
        made: how the run went: settings, machine, time.
        result: what the run measured, with the protocol.
    """

    file: str
    sha256: str
    task: str
    model: str
    command: str
    made: str
    result: str


PRESETS = {
    "argmax-seed": Preset(
        file="argmax-seed.keras",
        sha256="4eea3a83315ef2180a3c0db6f6948a2090e0d02b430a1cfbc273f3c6f589a710",
        task="argmax",
        model="ArgMaxNet",
        command="zoo argmax train --run runs/argmax/seed-100",
        made="the seed recipe: 3 residual blocks Block(10,60), 3,821 parameters, SGD lr 1e-4 "
        "x 0.98 per episode, momentum 0.9, batch 25, 100 episodes x 15,000 steps, seed 0; "
        "473 s of training on 2 CPU cores (TensorFlow 2.21, Keras 3.15.1)",
        result="seed test protocol (100 batches of 500 fresh scores): Err 0.020640, loss 0.155004",
    ),
    "argmax-improved": Preset(
        file="argmax-improved.keras",
        sha256="38220158bdbb2450822a325c9550e57c026cb1a1574aeb312fd4794306be68a9",
        task="argmax",
        model="ArgMaxNet",
        command="zoo argmax train --recipe improved --run runs/argmax/improved",
        made="the improved recipe: the seed's 3,821-parameter network, Adam lr 3e-3 x 0.96 per "
        "10,000-step episode, mean squared error, batch 250, 120 episodes, seed 0; 763 s of "
        "training on a shared 2-CPU machine (TensorFlow 2.21, Keras 3.15.1)",
        result="seed test protocol (100 batches of 500 fresh scores): Err 0.006160, loss 0.021033",
    ),
    "mnist-cnn-lrd": Preset(
        file="mnist-cnn-lrd.keras",
        sha256="b893ddcd73290a3096a105410a35357c7f8c4064386c9de744e095bc7413d3f0",
        task="ibs-vs-lrd",
        model="SimpleCNN",
        command="make demo (python examples/ibs_vs_lrd.py --quick), its lrd schedule",
        made="the seed's CNN on MNIST (54,000 training images), plain SGD, batch 128, lr 0.1 x "
        "0.9 per epoch, 30 epochs, 12,660 updates, seed 0; 1,873 s on a shared 2-CPU machine",
        result="all 10,000 MNIST test images: accuracy 0.9886, loss 0.0397",
    ),
    "mnist-cnn-ibs-equivalent": Preset(
        file="mnist-cnn-ibs-equivalent.keras",
        sha256="08e154a623091aea18a2dd3d213cecd2d1c2ae9b3a33190ec944e17878e4853e",
        task="ibs-vs-lrd",
        model="SimpleCNN",
        command="make demo (python examples/ibs_vs_lrd.py --quick), its ibs-equivalent schedule",
        made="the seed's CNN on MNIST (54,000 training images), plain SGD, lr 0.1, batch 128 x "
        "1/0.9 per epoch (to 2,717), 30 epochs, 4,060 updates, seed 0; 761 s on a shared "
        "2-CPU machine",
        result="all 10,000 MNIST test images: accuracy 0.9888, loss 0.0396",
    ),
}


def _names() -> str:
    return ", ".join(sorted(PRESETS))


def preset(name: str) -> Preset:
    """The `Preset` called `name`; `UsageError` listing the presets otherwise."""
    if name not in PRESETS:
        raise UsageError(f"`--preset` must be one of {_names()}, got {name!r}.")
    return PRESETS[name]


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def preset_path(name: str, directory: str | Path | None = None) -> Path:
    """The checked file of preset `name`: its sha256 must be the recorded one.

    Args:
        name: a key of `PRESETS`.
        directory: where the files are (default: the package's `zoo/preset_weights/`).
    """
    entry = preset(name)
    if directory is None:
        with resources.as_file(resources.files(WEIGHTS_PACKAGE) / entry.file) as path:
            path = Path(path)
    else:
        path = Path(directory) / entry.file
    if not path.is_file():
        raise CorruptFileError(path, f"preset {name!r} is missing from this installation")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise CorruptFileError(
            path, f"sha256 {actual} is not preset {name!r}'s {entry.sha256}; reinstall the zoo"
        )
    return path


def from_preset(name: str, directory: str | Path | None = None, **kwargs: Any):
    """The trained model of preset `name`, loaded after its sha256 is checked.

    Args:
        name: a key of `PRESETS` (`zoo presets` lists them).
        directory: where the files are (default: the package's own).
        **kwargs: passed to `keras.saving.load_model` (`compile=False`, ...).

    Returns:
        The `keras.Model` (`PRESETS[name].model`), compiled as it was trained.
    """
    from zoo.files import load_keras_model

    path = preset_path(name, directory)
    model = load_keras_model(path, **kwargs)
    expected = PRESETS[name].model
    if type(model).__name__ != expected:
        raise CorruptFileError(path, f"holds a {type(model).__name__}, not a {expected}")
    return model


def describe() -> str:
    """The listing `zoo presets` prints: one block per preset."""
    blocks = []
    for name in sorted(PRESETS):
        entry = PRESETS[name]
        blocks.append(
            f"{name}  ({entry.model}, zoo {entry.task})\n"
            f"  made by: {entry.command}\n"
            f"  settings: {entry.made}\n"
            f"  result: {entry.result}\n"
            f"  sha256: {entry.sha256}"
        )
    return "\n\n".join(blocks)
