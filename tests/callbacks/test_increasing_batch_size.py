import copy
import csv
import doctest
import math
import random
import re
import warnings

import keras
import numpy as np
import pytest

import zoo.callbacks.increasing_batch_size
from zoo.callbacks import IncreasingBatchSize, batch_size_at, equivalent_batch_schedule
from zoo.callbacks.increasing_batch_size import IncreasingBatches, shape_buckets
from zoo.data import ResizableBatches
from zoo.errors import UsageError

pytestmark = pytest.mark.backend  # run on TensorFlow, JAX and PyTorch (make test-backends)

N = 50  # examples; column 0 of x is the example's id
SCHEDULE = {"initial": 4, "growth": 2.0, "maximum": 16}
BATCHES = [4, 8, 16, 16]  # the schedule's first epochs
STEPS = [math.ceil(N / batch) for batch in BATCHES]  # [13, 7, 4, 4]
BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="uses tf.data / TensorBoard")


def id_data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.arange(n)[:, None], rng.random((n, 2))], axis=1).astype("float32")
    return x, rng.random((n, 1)).astype("float32")


class CountingModel(keras.Model):
    """A linear model of x[:, 1:]. `calls` counts the Python runs of `call`: once per trace
    (TensorFlow), once per compilation (JAX), once per step (eager)."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.calls = 0

    def call(self, x):
        self.calls += 1
        return self.dense(x[:, 1:])


class Served(IncreasingBatches):
    """`ibs.dataset`'s batches, recording each one served: its rows and the ids (column 0 of x)
    of the rows that weigh (padding rows weigh 0). Every backend's `fit` trains on exactly the
    batches its data adapter draws, so this is what the train steps saw."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = []

    def __getitem__(self, index):
        x, y, weight = super().__getitem__(index)
        self.served.append((len(x), x[:, 0][weight > 0].astype(int)))
        return x, y, weight


def served(ibs, n=N, seed=None):
    """What `ibs.dataset(*id_data(n), seed=seed)` is, recording what it serves."""
    return Served(*id_data(n), batch_size=ibs.initial, seed=seed)


class Tally(keras.callbacks.Callback):
    """Per epoch: what the train steps saw, and what the logs claim (place after the ibs)."""

    def __init__(self, data):
        super().__init__()
        self.data = data
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.data.served.clear()

    def on_epoch_end(self, epoch, logs=None):
        updates = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        batches = self.data.served
        ids = np.concatenate([ids for _, ids in batches])
        self.epochs.append(
            {
                "epoch": epoch,
                "seen": np.bincount(ids, minlength=len(self.data.x)).tolist(),
                "steps": len(batches),
                "largest": max(len(ids) for _, ids in batches),
                "shapes": sorted({rows for rows, _ in batches}),
                "updates": updates,
                "logged_batch_size": logs["batch_size"],
                "logged_updates": logs["parameter_updates"],
            }
        )


def assert_ran_as_logged(tally, epochs, updates_before=0):
    """Every example once per epoch; logged batch size and update count are what ran."""
    assert [e["epoch"] for e in tally.epochs] == list(epochs)
    updates = updates_before
    for record in tally.epochs:
        epoch = record["epoch"]
        assert record["seen"] == [1] * N, f"epoch {epoch}: {record['seen']}"
        assert record["steps"] == STEPS[epoch]
        assert record["largest"] == record["logged_batch_size"] == BATCHES[epoch]
        updates += STEPS[epoch]
        assert record["updates"] == record["logged_updates"] == updates


def progress_bars(output):
    """Per epoch of the printed progress, `(last step shown, every target shown)`."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    epochs = []
    for text in re.split(r"Epoch \d+/\d+\n", plain)[1:]:
        bars = [(int(done), int(target)) for done, target in re.findall(r"(\d+)/(\d+) ━", text)]
        epochs.append((bars[-1][0], sorted({target for _, target in bars})))
    return epochs


def compiled_model(learning_rate=0.01):
    model = CountingModel()
    model.compile(keras.optimizers.SGD(learning_rate), "mse", jit_compile=False)
    return model


class PlainPyDataset(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


def validation_data(kind, ibs):
    x, y = id_data(20, seed=1)
    if kind == "none":
        return None
    if kind == "arrays":
        return (x, y)
    if kind == "tf.data":
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((x, y)).batch(6)
    if kind == "PyDataset":
        return PlainPyDataset(x, y, 6)
    if kind == "ibs.dataset":  # the case: it used to rebind the callback
        return ibs.dataset(x, y)
    if kind == "ResizableBatches":
        return ResizableBatches(x, y, batch_size=3, seed=2)
    raise AssertionError(kind)


VALIDATION_KINDS = ["none", "arrays", "PyDataset", "ibs.dataset", "ResizableBatches"]
if BACKEND == "tensorflow":
    VALIDATION_KINDS.insert(2, "tf.data")


@pytest.mark.parametrize("kind", VALIDATION_KINDS)
def test_every_example_once_per_epoch_whatever_the_validation_data(kind, capsys):
    ibs = IncreasingBatchSize(**SCHEDULE)
    train = served(ibs, seed=0)
    validation = validation_data(kind, ibs)
    tally = Tally(train)
    model = compiled_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            train, validation_data=validation, epochs=3, callbacks=[ibs, tally], verbose=1
        )
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert_ran_as_logged(tally, range(3))
    assert history.history["batch_size"] == BATCHES[:3]
    assert history.history["parameter_updates"] == list(np.cumsum(STEPS[:3]))
    if validation is not None:
        assert len(history.history["val_loss"]) == 3
    if isinstance(validation, ResizableBatches):  # never resized
        assert validation.batch_size == (SCHEDULE["initial"] if kind == "ibs.dataset" else 3)
    assert progress_bars(capsys.readouterr().out) == [(steps, [steps]) for steps in STEPS[:3]]


def test_steps_per_epoch_is_refused_before_any_update():
    ibs = IncreasingBatchSize(**SCHEDULE)
    model = compiled_model()
    with pytest.raises(UsageError, match="steps_per_epoch"):
        model.fit(ibs.dataset(*id_data()), epochs=2, steps_per_epoch=5, callbacks=[ibs], verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


@pytest.mark.parametrize(
    "kind", [k for k in VALIDATION_KINDS if k in ("arrays", "tf.data", "PyDataset")]
)
def test_training_on_anything_but_resizable_batches_is_refused(kind):
    ibs = IncreasingBatchSize(**SCHEDULE)
    model = compiled_model()
    train = validation_data(kind, ibs)
    x, y = train if kind == "arrays" else (train, None)
    with pytest.raises(UsageError, match="ResizableBatches"):
        model.fit(x, y, epochs=2, shuffle=False, callbacks=[ibs], verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


@pytest.mark.parametrize("steps_per_execution", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_backup_and_restore_resumes_with_the_resumed_epochs_batch_size(
    tmp_path, steps_per_execution
):
    def fit(model, epochs, extra=()):
        ibs = IncreasingBatchSize(**SCHEDULE)
        data = served(ibs, seed=3)
        tally = Tally(data)
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        callbacks = [backup, ibs, tally, *extra]
        history = model.fit(
            data,
            epochs=epochs,
            shuffle=False,
            callbacks=callbacks,
            verbose=0,
        )
        return history, tally

    def fresh_model():
        keras.utils.set_random_seed(1)
        model = CountingModel()
        model.compile(
            keras.optimizers.SGD(0.05),
            "mse",
            steps_per_execution=steps_per_execution,
            jit_compile=False,
        )
        model(id_data()[0][:1])  # BackupAndRestore needs a built model
        return model

    straight = fresh_model()
    straight_history, straight_tally = fit(straight, 4)
    assert_ran_as_logged(straight_tally, range(4))

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        fit(fresh_model(), 4, extra=[Interrupt()])
    resumed = fresh_model()  # a new process would build and compile the model again
    history, tally = fit(resumed, 4)
    assert history.history["batch_size"] == BATCHES[2:4]
    assert history.history["parameter_updates"] == straight_history.history["parameter_updates"][2:]
    assert_ran_as_logged(tally, range(2, 4), updates_before=sum(STEPS[:2]))
    # Data order is a function of the epoch: resumed and uninterrupted runs end equal.
    for got, want in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@tensorflow_only
def test_early_stopping_reduce_lr_csv_logger_and_tensorboard_beside_it(tmp_path):
    import tensorflow as tf

    ibs = IncreasingBatchSize(**SCHEDULE)
    data = served(ibs)
    tally = Tally(data)
    # parameter_updates only grows: in mode "min" it never improves, so EarlyStopping
    # stops after epoch 2 (patience 2) and ReduceLROnPlateau halves the rate at every
    # epoch end from epoch 1 on (patience 1).
    callbacks = [
        ibs,
        tally,
        keras.callbacks.EarlyStopping("parameter_updates", patience=2, mode="min"),
        keras.callbacks.ReduceLROnPlateau("parameter_updates", factor=0.5, patience=1, mode="min"),
        keras.callbacks.CSVLogger(str(tmp_path / "history.csv")),
        keras.callbacks.TensorBoard(str(tmp_path / "tensorboard")),
    ]
    model = compiled_model(0.01)
    history = model.fit(data, epochs=10, callbacks=callbacks, verbose=0)
    assert_ran_as_logged(tally, range(3))
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.01, 0.005], rtol=1e-6)
    with open(tmp_path / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["batch_size"]) for row in rows] == BATCHES[:3]
    assert [int(row["parameter_updates"]) for row in rows] == list(np.cumsum(STEPS[:3]))
    logged = []
    for path in sorted((tmp_path / "tensorboard" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == "epoch_batch_size":
                    logged.append(float(tf.make_ndarray(value.tensor)))
    assert logged == BATCHES[:3]


def test_progress_bar_of_a_user_progbar_logger_listed_first(capsys):
    ibs = IncreasingBatchSize(**SCHEDULE)
    model = compiled_model()
    model.fit(
        ibs.dataset(*id_data()),
        epochs=2,
        verbose=1,
        callbacks=[keras.callbacks.ProgbarLogger(), ibs],
    )
    assert progress_bars(capsys.readouterr().out) == [(13, [13]), (7, [7])]


@tensorflow_only
def test_the_step_is_traced_once_without_jit():
    ibs = IncreasingBatchSize(initial=3, growth=1.5, maximum=60)
    model = CountingModel()
    model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=False)
    data = ibs.dataset(*id_data(200))
    model.fit(data, epochs=2, callbacks=[ibs], verbose=0)
    calls = model.calls  # the symbolic build and the trace(s) of the first step
    assert calls <= 3
    # 6 more epochs, 6 more batch sizes (6 to 34) and their remainders: no new trace, the step
    # was traced for an unknown batch size.
    model.fit(data, epochs=8, initial_epoch=2, callbacks=[ibs], verbose=0)
    assert model.calls == calls


@pytest.mark.skipif(BACKEND == "torch", reason="torch.compile needs a C++ toolchain")
def test_compilations_stay_bounded_as_the_batch_grows():
    ibs = IncreasingBatchSize(initial=3, growth=1.2, maximum=40)
    data = served(ibs, n=200, seed=0)
    tally = Tally(data)
    model = CountingModel()
    model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=True)
    history = model.fit(data, epochs=9, callbacks=[ibs, tally], verbose=0)
    batches = [ibs.batch_size_at(epoch) for epoch in range(9)]
    assert history.history["batch_size"] == batches == [3, 3, 4, 5, 6, 7, 8, 10, 12]
    true_sizes = {size for batch in batches for size in (batch, 200 % batch) if size}
    assert shape_buckets(3, 40, math.sqrt(2)) == [3, 5, 6, 9, 12, 17, 24, 34, 40]
    # The compiled step saw only bucket sizes, 5 where the true batches have 9: XLA and
    # jax.jit compile once per shape (JAX runs `call` once per compilation, besides the
    # model's symbolic builds).
    shapes = sorted({shape for record in tally.epochs for shape in record["shapes"]})
    assert shapes == [3, 5, 6, 9, 12] and len(true_sizes) == 9
    assert model.calls <= 2 + len(shapes)
    for record in tally.epochs:  # every example once per epoch, padding never counted
        assert record["seen"] == [1] * 200
        assert record["largest"] == record["logged_batch_size"]
        assert record["updates"] == record["logged_updates"]
    assert history.history["parameter_updates"][-1] == sum(math.ceil(200 / b) for b in batches)


@pytest.mark.parametrize(
    "reduction",
    [
        "sum_over_batch_size",
        pytest.param("sum", marks=pytest.mark.slow),
        pytest.param("mean_with_sample_weight", marks=pytest.mark.slow),
    ],
)
def test_padded_batches_train_exactly_as_the_true_batches(monkeypatch, reduction):
    def train(padded):
        # Padding is what a step compiled per shape gets; forced here, without compiling,
        # so that both runs use the same kernels on every backend.
        monkeypatch.setattr(
            zoo.callbacks.increasing_batch_size, "_compiled_per_shape", lambda model: padded
        )
        keras.utils.set_random_seed(4)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        loss = keras.losses.MeanSquaredError(reduction=reduction)
        model.compile(keras.optimizers.SGD(0.02), loss, metrics=["mae"], jit_compile=False)
        ibs = IncreasingBatchSize(initial=3, growth=1.7, maximum=20, bucket_growth=2.0)
        data = served(ibs, seed=5)
        tally = Tally(data)
        history = model.fit(data, epochs=5, callbacks=[ibs, tally], verbose=0)
        for record in tally.epochs:
            assert record["seen"] == [1] * N
        shapes = {shape for record in tally.epochs for shape in record["shapes"]}
        return model.get_weights(), history.history, shapes

    padded_weights, padded_history, padded_sizes = train(True)
    true_weights, true_history, true_sizes = train(False)
    assert padded_sizes == {3, 6, 12, 20} and len(true_sizes) > len(padded_sizes)
    for got, want in zip(padded_weights, true_weights):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(padded_history["mae"], true_history["mae"], rtol=1e-5)
    assert padded_history["parameter_updates"] == true_history["parameter_updates"]


def test_padding_needs_a_known_loss_reduction(monkeypatch):
    monkeypatch.setattr(
        zoo.callbacks.increasing_batch_size, "_compiled_per_shape", lambda model: True
    )
    ibs = IncreasingBatchSize(**SCHEDULE)
    model = compiled_model()
    model.compile(keras.optimizers.SGD(0.01), keras.losses.MeanSquaredError(reduction="none"))
    with pytest.raises(UsageError, match="reductions \\['none'\\].*jit_compile=False"):
        model.fit(ibs.dataset(*id_data()), epochs=1, callbacks=[ibs], verbose=0)
    plain = ResizableBatches(*id_data(), batch_size=4, seed=0)
    with pytest.raises(UsageError, match="compiled per batch shape.*ibs.dataset"):
        compiled_model().fit(plain, epochs=1, callbacks=[ibs], verbose=0)


def test_the_order_is_the_datasets_whatever_fits_shuffle():
    def train(python_seed, shuffle):
        random.seed(python_seed)  # what Keras's own batch shuffling would draw from
        keras.utils.set_random_seed(1)
        model = compiled_model(0.05)
        ibs = IncreasingBatchSize(**SCHEDULE)
        model.fit(
            ibs.dataset(*id_data(), seed=3), epochs=3, shuffle=shuffle, callbacks=[ibs], verbose=0
        )
        return model.get_weights()

    # `fit`'s default shuffle=True changes nothing: the order of epoch e is the dataset's own.
    for got, want in zip(train(1, shuffle=True), train(0, shuffle=False)):
        np.testing.assert_array_equal(got, want)


def test_a_second_increasing_batch_size_is_refused():
    first, second = IncreasingBatchSize(**SCHEDULE), IncreasingBatchSize(2, 1.0, 2)
    model = compiled_model()
    with pytest.raises(UsageError, match="more than one IncreasingBatchSize"):
        model.fit(first.dataset(*id_data()), epochs=2, callbacks=[first, second], verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_survives_deepcopy_like_keras_tuner():
    ibs = IncreasingBatchSize(**SCHEDULE)
    data = served(ibs)
    clone = copy.deepcopy(ibs)
    assert clone is not ibs and clone.get_config() == ibs.get_config()
    tally = Tally(data)
    history = compiled_model().fit(data, epochs=2, callbacks=[clone, tally], verbose=0)
    assert history.history["batch_size"] == BATCHES[:2]
    assert_ran_as_logged(tally, range(2))


def test_formula():
    assert [batch_size_at(e, 128, 1.037, 4526) for e in (0, 1, 2, 50, 200)] == [
        128,
        132,
        137,
        int(128 * 1.037**50),
        4526,
    ]
    ibs = IncreasingBatchSize(**SCHEDULE)
    assert [ibs.batch_size_at(epoch) for epoch in range(4)] == BATCHES


def test_equivalent_schedule_inverts_the_lr_decay():
    assert equivalent_batch_schedule(128, 0.9, 4, maximum=170) == [128, 142, 158, 170]
    with pytest.raises(UsageError, match="lr_decay"):
        equivalent_batch_schedule(128, 1.5, 4)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"initial": 0, "growth": 1.1, "maximum": 10}, "initial"),
        ({"initial": 4, "growth": 0.9, "maximum": 10}, "growth"),
        ({"initial": 4, "growth": 1.1, "maximum": 2}, "maximum"),
        ({"initial": 4, "growth": 1.1, "maximum": 2.5}, "maximum"),
        ({"initial": 4, "growth": 1.1, "maximum": 8, "bucket_growth": 1.0}, "bucket_growth"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(UsageError, match=name):
        IncreasingBatchSize(**kwargs)


def test_config_round_trip():
    ibs = IncreasingBatchSize(**SCHEDULE, bucket_growth=1.5)
    assert IncreasingBatchSize(**ibs.get_config()).get_config() == ibs.get_config()
    assert ibs.get_config()["bucket_growth"] == 1.5


def test_docstring_examples_run():
    result = doctest.testmod(zoo.callbacks.increasing_batch_size)
    assert result.attempted >= 5 and result.failed == 0


def test_outside_fit_the_error_names_the_keras_version():
    ibs = IncreasingBatchSize(**SCHEDULE)
    with pytest.raises(RuntimeError, match=re.escape(f"Keras {keras.__version__}")):
        ibs.on_epoch_begin(0)


def test_changed_keras_internals_fail_loudly(monkeypatch):
    from keras.src.trainers.epoch_iterator import EpochIterator

    # A Keras whose epoch loop no longer takes its step count from `_num_batches`.
    monkeypatch.setattr(EpochIterator, "num_batches", property(lambda self: 10**6))
    ibs = IncreasingBatchSize(**SCHEDULE)
    model = compiled_model()
    with pytest.raises(RuntimeError, match=re.escape(f"Keras {keras.__version__}")):
        model.fit(ibs.dataset(*id_data()), epochs=2, callbacks=[ibs], verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


# --- `tf_dataset()`: the same batches computed inside tf.data (TensorFlow) -----------------


def flat(batch):
    return tuple(np.asarray(part) for part in keras.tree.flatten(batch))


def graph_batches(data):
    return [flat(batch) for batch in data.tf_dataset()]


def python_batches(data):
    return [flat(data[i]) for i in range(len(data))]


def assert_same_batches(got, want):
    assert len(got) == len(want)
    for got_batch, want_batch in zip(got, want):
        assert len(got_batch) == len(want_batch)
        for got_part, want_part in zip(got_batch, want_batch):
            assert got_part.dtype == want_part.dtype
            np.testing.assert_array_equal(got_part, want_part)


@tensorflow_only
@pytest.mark.parametrize("padded", [None, 16])
@pytest.mark.parametrize("mean_reduction", [True, False])
def test_tf_dataset_serves_exactly_getitem(padded, mean_reduction):
    x, y = id_data()
    data = IncreasingBatches(x, y.astype("float64"), batch_size=4, seed=7)
    data.tf_dataset()  # made before the changes below: it follows them
    data.mean_reduction = mean_reduction
    for epoch, batch_size in [(0, 4), (1, 7), (2, 16), (3, 50), (5, 3)]:
        data.epoch, data.batch_size = epoch, batch_size
        data.padded_size = None if padded is None else max(padded, batch_size)
        assert_same_batches(graph_batches(data), python_batches(data))
    plain = ResizableBatches(x, y, batch_size=6, shuffle=False)
    assert_same_batches(graph_batches(plain), python_batches(plain))
    assert len(graph_batches(plain)[0]) == 2  # (x, y), no weights
    # Tuples of arrays (a model with two outputs), padded too.
    two = IncreasingBatches(x, (y, 2 * y), batch_size=8, seed=1)
    two.padded_size = 12
    assert_same_batches(graph_batches(two), python_batches(two))
    assert len(graph_batches(two)[0]) == 4  # x, two targets, weights


@tensorflow_only
@pytest.mark.parametrize("jit_compile", [False, True])
def test_training_on_tf_dataset_equals_training_on_the_pydataset(jit_compile):
    def train(through_graph):
        keras.utils.set_random_seed(2)
        model = CountingModel()
        model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=jit_compile)
        ibs = IncreasingBatchSize(initial=3, growth=1.6, maximum=20)
        data = served(ibs, seed=4)  # records only what the Python path serves
        train_data = IncreasingBatches(data.x, data.y, batch_size=3, seed=4).tf_dataset()
        history = model.fit(
            train_data if through_graph else data,
            epochs=5,
            shuffle=False,
            callbacks=[ibs],
            verbose=0,
        )
        return model.get_weights(), history.history, model.calls

    graph_weights, graph_history, graph_calls = train(True)
    python_weights, python_history, _ = train(False)
    assert graph_history["batch_size"] == python_history["batch_size"] == [3, 4, 7, 12, 19]
    assert graph_history["parameter_updates"] == python_history["parameter_updates"]
    np.testing.assert_allclose(graph_history["loss"], python_history["loss"], rtol=1e-6)
    for got, want in zip(graph_weights, python_weights):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # Padded to buckets under XLA (3, 5, 6, 9, 12, 17, 20 hold every size seen), traced once
    # with an unknown batch size without it.
    assert graph_calls <= (2 + 7 if jit_compile else 3)


@tensorflow_only
def test_tf_dataset_refuses_what_it_cannot_compute():
    class Augmented(ResizableBatches):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x + 1, y

    with pytest.raises(UsageError, match="Augmented overrides `__getitem__`"):
        Augmented(*id_data(), batch_size=4).tf_dataset()
    x, y = id_data()
    with pytest.raises(UsageError, match="`y` to be a NumPy array or a tuple of them, got list"):
        ResizableBatches(x, y.tolist(), batch_size=4).tf_dataset()


def test_for_fit_is_the_tf_dataset_on_tensorflow_only():
    data = ResizableBatches(*id_data(), batch_size=4)
    if BACKEND == "tensorflow":
        assert data.for_fit()._zoo_resizable_batches is data
    else:
        assert data.for_fit() is data


@tensorflow_only
def test_follow_epochs_gives_the_tf_dataset_the_epoch_of_fit():
    from zoo.batches import FollowEpochs

    def train(kind):
        keras.utils.set_random_seed(3)
        model = compiled_model(0.05)
        data = ResizableBatches(*id_data(), batch_size=7, seed=5)
        callbacks = [] if kind == "unfollowed" else [FollowEpochs(data)]
        train_data = data if kind == "object" else data.tf_dataset()
        model.fit(train_data, epochs=3, shuffle=False, callbacks=callbacks, verbose=0)
        return model.get_weights()

    want = train("object")  # what JAX and PyTorch train on: for_fit() is the object there
    for got, expected in zip(train("followed"), want):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # Without it every epoch would replay epoch 0's order.
    assert not all(np.allclose(a, b) for a, b in zip(train("unfollowed"), want))
