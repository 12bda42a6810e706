"""The memory-AE study (issue 15): its measures on hand-made inputs, the memory initialisation
and pretraining phases, and a tiny real-MNIST study that a rerun skips."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from zoo.cli import main as zoo_main
from zoo.errors import ResumeMismatchError, UsageError
from zoo.tasks.memory_ae import MemoryInformedAE
from zoo.tasks.memory_ae import study as study_module
from zoo.tasks.memory_ae.memory_init import (
    PRETRAIN_PHASES,
    fit_memory_ae,
    memory_from_kmeans,
    memory_from_samples,
    phase_epochs,
    set_memory,
)
from zoo.tasks.memory_ae.study import run_study
from zoo.tasks.memory_ae.study_config import StudyConfig, parse_condition
from zoo.tasks.memory_ae.study_measures import (
    mean_pairwise_rms_distance,
    meets_goal,
    mutual_information_bits,
    specialisation,
)

# --- measures ---------------------------------------------------------------------------------


def test_information_is_log2_10_bits_when_the_winner_is_the_digit():
    digits = np.repeat(np.arange(10), 37)
    assert mutual_information_bits(digits, digits) == pytest.approx(np.log2(10), abs=1e-12)
    # renaming the winners changes nothing
    assert mutual_information_bits((digits * 7 + 3) % 10, digits) == pytest.approx(np.log2(10))


def test_information_is_zero_for_independent_winners_and_one_bit_for_parity():
    winners, digits = np.meshgrid(np.arange(5), np.arange(10))  # every pair equally often
    assert mutual_information_bits(winners.ravel(), digits.ravel()) == pytest.approx(0, abs=1e-12)
    digits = np.repeat(np.arange(10), 20)
    # the winner says the parity: H(W) = 1 bit, H(W | digit) = 0
    assert mutual_information_bits(digits % 2, digits) == pytest.approx(1.0, abs=1e-12)
    # one winner for everything carries no information
    assert mutual_information_bits(np.zeros_like(digits), digits) == 0.0


def test_information_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="equal-length"):
        mutual_information_bits(np.zeros(3), np.zeros(4))


def test_pairwise_distance_and_specialisation_by_hand():
    targets = np.zeros((4, 9))
    outputs = np.zeros((4, 3, 9))
    outputs[:, 0] = 0.1  # subnet 0: error 0.01 everywhere
    outputs[:, 1] = 0.5  # subnet 1: error 0.25
    outputs[2:, 2] = 0.0  # subnet 2 is perfect on examples 2, 3 and
    outputs[:2, 2] = 1.0  # worst on examples 0, 1
    labels = np.array([3, 3, 7, 7])
    # pairs per example: (0,1) 0.4, (0,2) 0.9 or 0.1, (1,2) 0.5 or 0.5
    expected_distance = np.mean([0.4, 0.5, 0.5])
    assert mean_pairwise_rms_distance(outputs) == pytest.approx(expected_distance)
    assert mean_pairwise_rms_distance(outputs[:, :1]) == 0.0

    measures = specialisation(outputs, targets, labels)
    assert measures["best_subnet_mse"] == pytest.approx(0.005)  # 0.01, 0.01, 0, 0
    assert measures["rms_error"] == pytest.approx(np.sqrt(0.005))
    assert measures["distance_to_error"] == pytest.approx(expected_distance / np.sqrt(0.005))
    assert [measures[f"win_share_{k}"] for k in range(3)] == [0.5, 0.0, 0.5]
    assert measures["subnets_winning"] == 2
    assert measures["winner_class_bits"] == pytest.approx(1.0)  # winner 0 <-> 3, 2 <-> 7


def test_goal_needs_all_three_parts():
    row = {"winner_class_bits": 0.6, "distance_to_error": 0.7, "best_subnet_mse": 0.05}
    assert meets_goal(row, single_mse=0.05)
    assert not meets_goal(row, single_mse=None)
    assert not meets_goal(row, single_mse=0.045)  # 0.05 > 1.1 * 0.045
    assert not meets_goal({**row, "winner_class_bits": 0.4}, 0.05)
    assert not meets_goal({**row, "distance_to_error": 0.4}, 0.05)


# --- conditions and config ------------------------------------------------------------------


def test_condition_names():
    assert parse_condition("dl2-rwta")[:4] == ("dl2-rwta", "setmin", 2, "rwta")
    assert parse_condition("dl6-sigma0.5").sigma == 0.5
    memory = parse_condition("memory-signsgd-kmeans-pretrain", memory_code_dims=8)
    assert (memory.family, memory.code_dims, memory.variant, memory.init, memory.pretrain) == (
        "memory",
        8,
        "signsgd",
        "kmeans",
        True,
    )
    for bad in (
        "dl2-foo",
        "dl0-rwta",
        "dl2-sigma-1",
        "dl2-sigma",
        "dl2-rwta5",
        "memory-sgd-kmeans",
        "memory-adam-zeros",
        "dl2-sigmanan",
    ):
        with pytest.raises(UsageError, match="--conditions"):
            parse_condition(bad)


@pytest.mark.parametrize(
    "field, value, flag",
    [
        ("conditions", ("dl2-rwta", "dl2-rwta"), "--conditions"),
        ("conditions", (), "--conditions"),
        ("relaxation", 1.0, "--relaxation"),
        ("relaxation", float("nan"), "--relaxation"),
        ("learning_rate", 0.0, "--learning-rate"),
        ("setmin_epochs", 0, "--setmin-epochs"),
        ("batch_size", 10**12, "--batch-size"),
        ("seed", 2**32, "--seed"),
    ],
)
def test_config_refuses_bad_values(field, value, flag):
    with pytest.raises(UsageError, match=flag):
        StudyConfig(**{field: value})


def test_command_line_error_is_one_line(capsys, tmp_path):
    flags = ["--run", str(tmp_path / "study"), "--conditions", "dl2-bogus"]
    code = zoo_main(["memory-ae", "study", *flags])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("zoo: error: `--conditions`") and "\n" not in error
    assert not (tmp_path / "study").exists()


# --- memory initialisation and pretraining --------------------------------------------------


def test_kmeans_finds_separated_clusters_and_samples_are_training_images():
    rng = np.random.default_rng(0)
    centres = np.array([[0.1, 0.1, 0.9], [0.9, 0.1, 0.1], [0.1, 0.9, 0.1]])
    points = np.concatenate([centre + 0.01 * rng.normal(size=(50, 3)) for centre in centres])
    points = points.astype("float32")
    found = memory_from_kmeans(points, 3, seed=1)
    order = np.argsort(found @ np.array([1.0, 10.0, 100.0]))
    np.testing.assert_allclose(found[order], centres[np.argsort(centres @ [1, 10, 100])], atol=0.01)
    picked = memory_from_samples(points, 5, seed=2)
    assert len({row.tobytes() for row in picked}) == 5
    assert all(np.any(np.all(points == row, axis=1)) for row in picked)
    with pytest.raises(UsageError, match="slots"):
        memory_from_samples(points, 1000, seed=0)


def test_set_memory_makes_sigmoid_memory_the_pictures():
    model = MemoryInformedAE(slots=3, units=4, hidden=8)
    model.build((None, 2))
    pictures = np.array([[0.0, 0.5, 1.0, 0.2]] * 3)
    set_memory(model, pictures)
    np.testing.assert_allclose(
        ops.convert_to_numpy(ops.sigmoid(model.memory.memory)),
        np.clip(pictures, 0.01, 0.99),
        atol=1e-6,
    )
    with pytest.raises(UsageError, match="memory array"):
        set_memory(model, np.zeros((2, 4)))


def test_phase_epochs_share_the_run():
    assert phase_epochs(PRETRAIN_PHASES, 4) == [
        ("memory", 0, 1),
        ("informed", 1, 2),
        ("joint", 2, 4),
    ]
    assert phase_epochs(PRETRAIN_PHASES, 3) == [
        ("memory", 0, 1),
        ("informed", 1, 2),
        ("joint", 2, 3),
    ]
    assert phase_epochs((("joint", 1),), 7) == [("joint", 0, 7)]


def test_pretraining_phases_train_only_their_part():
    """Phase 1 moves only the memory path, phase 2 only the candidates, phase 3 all."""
    keras.utils.set_random_seed(0)
    model = MemoryInformedAE(slots=3, units=5, hidden=8)
    model.build((None, 2))
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(32, 2)).astype("float32")
    images = rng.random((32, 5)).astype("float32")
    parts = {"memory": [model.selector, model.memory], "informed": [model.candidates]}

    def snapshot():
        return {
            name: [np.array(w) for layer in layers for w in layer.get_weights()]
            for name, layers in parts.items()
        }

    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(snapshot())

    before = snapshot()
    rows = fit_memory_ae(
        model,
        _Batches(codes, images),
        4,
        lambda: keras.optimizers.Adam(0.01),
        PRETRAIN_PHASES,
        [Watch()],
        verbose=0,
    )
    assert [(row["phase"], row["epoch"]) for row in rows] == [
        ("memory", 1),
        ("informed", 2),
        ("joint", 3),
        ("joint", 4),
    ]

    def moved(a, b, name):
        return any(not np.array_equal(x, y) for x, y in zip(a[name], b[name]))

    assert moved(before, seen[0], "memory") and not moved(before, seen[0], "informed")
    assert moved(seen[0], seen[1], "informed") and not moved(seen[0], seen[1], "memory")
    assert moved(seen[2], seen[3], "memory") and moved(seen[2], seen[3], "informed")
    assert all(layer.trainable for layers in parts.values() for layer in layers)


class _Batches(keras.utils.PyDataset):
    def __init__(self, codes, images):
        super().__init__()
        self.codes, self.images = codes, images

    def __len__(self):
        return 2

    def __getitem__(self, index):
        rows = slice(index * 16, (index + 1) * 16)
        return self.codes[rows], (self.images[rows], self.images[rows])


# --- a tiny real-MNIST study ----------------------------------------------------------------

TINY = {
    "train_limit": 300,
    "test_limit": 200,
    "hidden": 16,
    "setmin_epochs": 1,
    "memory_epochs": 3,
    "batch_size": 50,
}


@pytest.fixture
def mnist_env(mnist_dir, tfds_dir, monkeypatch):
    monkeypatch.setenv("ZOO_TFDS_DIR", os.environ.get("ZOO_TFDS_DIR") or tfds_dir)
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))


@pytest.mark.slow  # a real training run (30 s on 2 cores); make test-all
def test_tiny_study_writes_its_table_and_a_rerun_skips_finished_conditions(
    mnist_env, tmp_path, monkeypatch, capsys
):
    config = StudyConfig(conditions=("dl2-single", "dl2-rwta"), **TINY)
    tables = run_study(config, tmp_path / "study")
    setmin = tables["setmin"]
    assert list(setmin["condition"]) == ["dl2-single", "dl2-rwta"]
    assert setmin["mse_vs_single"].iloc[0] == 1.0
    assert setmin["winner_class_bits"].iloc[0] == 0.0  # one subnet wins everything
    rwta = json.loads((tmp_path / "study/conditions/dl2-rwta.json").read_text())
    shares = [rwta[f"win_share_{k}"] for k in range(5)]
    assert sum(shares) == pytest.approx(1.0) and 0 < rwta["best_subnet_mse"] < 0.25
    for name in ("dl2-single.png", "dl2-rwta.png", "setmin.csv", "history.csv"):
        assert (tmp_path / "study" / name).stat().st_size > 0
    metrics = json.loads((tmp_path / "study/metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["conditions"] == ["dl2-single", "dl2-rwta"]

    # a rerun trains nothing: every condition is committed
    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished condition was trained again")

    monkeypatch.setattr(study_module, "train_setmin", must_not_train)
    capsys.readouterr()
    again = run_study(config, tmp_path / "study")
    assert capsys.readouterr().out.count("finished earlier; skipped") == 2
    assert again["setmin"].equals(setmin)
    # the list may change between reruns: it selects conditions, finished ones are reused
    subset = run_study(
        StudyConfig(conditions=("dl2-rwta",), **TINY),
        tmp_path / "study",
        given={"conditions": ("dl2-rwta",)},
    )
    assert (
        subset["setmin"]
        .drop(columns=["mse_vs_single", "goal_met"])
        .equals(setmin.iloc[[1]].drop(columns=["mse_vs_single", "goal_met"]).reset_index(drop=True))
    )

    # a condition whose record was never committed (killed mid-training) is trained again
    (tmp_path / "study/conditions/dl2-rwta.json").unlink()
    with pytest.raises(AssertionError, match="trained again"):
        run_study(config, tmp_path / "study")

    # another setting on the same folder is refused, naming the flag
    with pytest.raises(ResumeMismatchError, match="--relaxation"):
        run_study(
            StudyConfig(conditions=("dl2-single", "dl2-rwta"), **{**TINY, "relaxation": 0.2}),
            tmp_path / "study",
            given={"relaxation": 0.2},
        )


@pytest.mark.slow
def test_tiny_memory_conditions(mnist_env, tmp_path):
    config = StudyConfig(
        conditions=("memory-adam-kmeans-pretrain", "memory-signsgd-samples"), **TINY
    )
    memory = run_study(config, tmp_path / "study")["memory"]
    assert list(memory["condition"]) == list(config.conditions)
    assert (memory["slots_used"] >= 1).all() and (memory["selection_perplexity"] >= 1).all()
    history = json.loads(
        (tmp_path / "study/conditions/memory-adam-kmeans-pretrain.json").read_text()
    )
    assert history["test_mse_memory"] < 0.2
