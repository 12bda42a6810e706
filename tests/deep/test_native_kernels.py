"""The native CPU chunk kernels: built once into the user cache, equal to the XLA kernels, the
same bits with one thread or two, the in-place update equal to the op's, the cache reused and
repaired, and the XLA fallback."""

import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

from zoo.deep import kernels as kernel_module
from zoo.deep import native
from zoo.deep.kernels import ChunkKernels, NativeChunkKernels, NativeKernelsWarning, select_kernels
from zoo.deep.native import NativeBuildError


@pytest.fixture(scope="module")
def built():
    """One build (or the cached one) shared by every test here."""
    native.load()
    return native.build()


def chunk(layers, width, batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(-1, 1, (batch, width)).astype(dtype),
        rng.uniform(-1, 1, (batch, width)).astype(dtype),
        rng.uniform(-0.5, 0.5, (layers, width, width)).astype(dtype),
        rng.uniform(-0.1, 0.1, (layers, width)).astype(dtype),
    )


def relative_error(got, want):
    got, want = np.asarray(got), np.asarray(want)
    return np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30)


def all_calls(kernels, h, g, W, b, lr=0.05):
    return [
        kernels.forward(h, W, b),
        *kernels.backward(h, g, W, b),
        *kernels.backward_sgd(h, g, W, b, lr),
    ]


def test_the_library_builds_loads_and_is_chosen_on_cpu(built):
    assert built.path.exists() and built.path.name.startswith("deep_core_ops-tf" + tf.__version__)
    ops = native.load()
    for name in (
        "zoo_deep_chunk_forward",
        "zoo_deep_chunk_backward",
        "zoo_deep_chunk_backward_sgd",
    ):
        assert hasattr(ops, name)
    assert select_kernels("softsign", 0.1, np.float32, "native").kind == "native"
    assert select_kernels("softsign", 0.1, np.float32, "auto").kind == "native"
    assert select_kernels("softsign", 0.1, np.float32, "xla").kind == "xla"


# Widths 1, 2, 4, 8 with a batch of a vector or more take the SIMD-lane path; 3, 32 and batch 1
# the per-sample path. 3000 layers of width 4 at batch 16 span several sub-chunks.
CASES = [
    (3000, 4, 16),
    (700, 1, 16),
    (700, 2, 20),
    (700, 8, 16),
    (300, 3, 5),
    (120, 32, 16),
    (700, 4, 1),
    (7, 4, 16),
]


# One thread's results are checked against two threads' bit for bit below, so the one-thread
# half of this grid runs with `make test-all`.
@pytest.mark.parametrize("threads", [pytest.param(1, marks=pytest.mark.slow), 2])
@pytest.mark.parametrize("layers, width, batch", CASES)
@pytest.mark.parametrize("activation", ["softsign", "tanh", "relu"])
def test_float64_equals_the_xla_kernels(built, layers, width, batch, activation, threads):
    h, g, W, b = chunk(layers, width, batch, np.float64)
    alpha = 1 / np.sqrt(layers)
    got = all_calls(NativeChunkKernels(activation, alpha, threads=threads), h, g, W, b)
    want = all_calls(ChunkKernels(activation, alpha), h, g, W, b)
    for name, a, c in zip(["h", "g_start", "dW", "db", "g_start", "W'", "b'"], got, want):
        assert a.shape == c.shape and a.dtype == c.dtype == tf.float64, name
        assert relative_error(a, c) <= 1e-10, name
    assert np.abs(want[2].numpy()).max() > 0  # the gradient is not trivially zero


@pytest.mark.parametrize("layers, width, batch", [(3000, 4, 16), (300, 3, 5), (700, 2, 16)])
def test_float32_equals_the_xla_kernels(built, layers, width, batch):
    h, g, W, b = chunk(layers, width, batch, np.float32, seed=1)
    got = all_calls(NativeChunkKernels("softsign", 0.05), h, g, W, b)
    want = all_calls(ChunkKernels("softsign", 0.05), h, g, W, b)
    for a, c in zip(got, want):
        assert a.dtype == c.dtype == tf.float32
        assert relative_error(a, c) <= 1e-5


@pytest.mark.parametrize(
    "layers, width, batch, dtype",
    [
        (3000, 4, 16, np.float32),
        (3000, 4, 16, np.float64),
        (3000, 2, 16, np.float32),
        (3000, 2, 40, np.float64),
        (3000, 8, 48, np.float32),
        (300, 32, 16, np.float64),
    ],
)
def test_one_thread_and_two_give_the_same_bits(built, layers, width, batch, dtype):
    """Two threads split the batch but add the weight gradients in one thread's order."""
    h, g, W, b = chunk(layers, width, batch, dtype, seed=2)
    one = all_calls(NativeChunkKernels("softsign", 0.02, threads=1), h, g, W, b)
    two = all_calls(NativeChunkKernels("softsign", 0.02, threads=2), h, g, W, b)
    assert NativeChunkKernels("softsign", 0.02, threads=2).threads == 2
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a.numpy(), c.numpy())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "layers, width, batch, dtype",
    [
        (3000, 4, 16, np.float32),
        (700, 4, 16, np.float64),
        (700, 2, 20, np.float64),
        (300, 3, 5, np.float64),
    ],
)
def test_the_in_place_update_equals_the_op(built, layers, width, batch, dtype, threads):
    h, g, W, b = chunk(layers, width, batch, dtype, seed=4)
    kernels = NativeChunkKernels("tanh", 0.03, threads=threads)
    g_op, W_op, b_op = kernels.backward_sgd(h, g, W, b, 0.125)
    W_here, b_here = W.copy(), b.copy()
    g_here = kernels.backward_sgd_in_place(h, g, W_here, b_here, 0.125)
    np.testing.assert_array_equal(g_here, g_op.numpy())
    np.testing.assert_array_equal(W_here, W_op.numpy())
    np.testing.assert_array_equal(b_here, b_op.numpy())
    assert not np.array_equal(W_here, W)


def test_the_in_place_update_refuses_arrays_it_cannot_write(built):
    h, g, W, b = chunk(10, 4, 16, np.float32)
    kernels = NativeChunkKernels("softsign", 0.1)
    with pytest.raises(ValueError, match="`W` must be a C-contiguous, writeable"):
        kernels.backward_sgd_in_place(h, g, np.asfortranarray(W), b, 0.1)
    W.flags.writeable = False
    with pytest.raises(ValueError, match="`W` must be a C-contiguous, writeable"):
        kernels.backward_sgd_in_place(h, g, W, b, 0.1)
    with pytest.raises(ValueError, match="are not one chunk of one dtype"):
        kernels.backward_sgd_in_place(h, g, W.copy(), b[:5].copy(), 0.1)
    with pytest.raises(ValueError, match="must be \\(B, 4\\)"):
        kernels.backward_sgd_in_place(h[:, :3], g, W.copy(), b, 0.1)


def test_sgd_uses_each_layers_pre_update_weights(built):
    """backward_sgd's weights equal W - lr * backward's gradient, layer by layer."""
    h, g, W, b = chunk(500, 4, 16, np.float64, seed=3)
    kernels = NativeChunkKernels("tanh", 0.1)
    g_start, dW, db = kernels.backward(h, g, W, b)
    g_sgd, new_W, new_b = kernels.backward_sgd(h, g, W, b, 0.25)
    np.testing.assert_array_equal(g_sgd.numpy(), g_start.numpy())
    np.testing.assert_allclose(new_W.numpy(), W - 0.25 * dW.numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(new_b.numpy(), b - 0.25 * db.numpy(), rtol=0, atol=1e-15)


def test_an_empty_chunk_passes_the_gradient_through(built):
    h, g, W, b = chunk(0, 4, 16, np.float32)
    kernels = NativeChunkKernels("relu", 0.1)
    np.testing.assert_array_equal(kernels.forward(h, W, b).numpy(), h)
    g_start, dW, db = kernels.backward(h, g, W, b)
    np.testing.assert_array_equal(g_start.numpy(), g)
    assert dW.shape == (0, 4, 4) and db.shape == (0, 4)


def test_bad_shapes_name_the_input(built):
    h, g, W, b = chunk(5, 4, 16, np.float32)
    kernels = NativeChunkKernels("softsign", 0.1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`weights` must have shape"):
        kernels.forward(h, W[:, :3], b)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`g_end` must have the shape"):
        kernels.backward(h, g[:3], W, b)


def test_the_cached_library_is_reused_without_compiling(built):
    modified = built.path.stat().st_mtime_ns
    again = native.build()
    assert again.path == built.path and not again.compiled
    assert built.path.stat().st_mtime_ns == modified


def cached_copy(built, cache_dir):
    """The shared build copied into another cache folder, as if built there."""
    target = native.library_path(cache_dir)
    target.parent.mkdir(parents=True)
    shutil.copy(built.path, target)
    shutil.copy(
        built.path.with_name(built.path.name + ".sha256"), target.with_name(target.name + ".sha256")
    )
    return target


def test_an_intact_copy_in_another_cache_is_used_even_without_a_compiler(
    built, tmp_path, monkeypatch
):
    target = cached_copy(built, tmp_path)
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    result = native.build(tmp_path)
    assert result.path == target and not result.compiled


def test_a_corrupted_cache_entry_is_not_loaded_but_rebuilt(built, tmp_path, monkeypatch):
    target = cached_copy(built, tmp_path)
    with open(target, "r+b") as library:
        library.seek(4096)
        library.write(b"\0" * 64)
    # With no compiler the rebuild fails, which shows the corrupted library was refused.
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.raises(NativeBuildError, match="no C\\+\\+ compiler"):
        native.build(tmp_path)


@pytest.mark.slow
def test_a_corrupted_cache_entry_is_rebuilt(built, tmp_path):
    target = cached_copy(built, tmp_path)
    target.write_bytes(target.read_bytes()[:1000])  # truncated
    result = native.build(tmp_path)
    assert result.compiled and result.path == target
    assert target.read_bytes() != b"" and native._is_intact(target)


@pytest.mark.slow
def test_two_processes_building_at_once_both_get_the_library(tmp_path):
    script = "from zoo.deep import native; import sys; print(native.build(sys.argv[1]).compiled)"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    compiled = [child.communicate()[0].strip().splitlines()[-1] for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sorted(compiled) == ["False", "True"]
    assert native._is_intact(native.library_path(tmp_path))


@pytest.fixture
def no_compiler(tmp_path, monkeypatch):
    """An empty cache and no compiler; warnings already given are forgotten."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setattr(kernel_module, "_warned", set())


def test_auto_falls_back_to_xla_with_one_warning_line(no_compiler):
    with pytest.warns(NativeKernelsWarning) as caught:
        chosen = select_kernels("softsign", 0.1, np.float32, "auto")
    assert chosen.kind == "xla" and isinstance(chosen, ChunkKernels)
    message = str(caught[0].message)
    assert "\n" not in message and "CXX=/nonexistent/c++" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_kernels("tanh", 0.1, np.float32, "auto").kind == "xla"  # said once


def test_native_without_a_compiler_is_a_one_line_error(no_compiler):
    with pytest.raises(NativeBuildError) as error:
        select_kernels("softsign", 0.1, np.float32, "native")
    assert "\n" not in str(error.value) and "compiler" in str(error.value)


def test_a_failed_compile_names_its_log(tmp_path, monkeypatch):
    failing = tmp_path / "failing-c++"
    failing.write_text("#!/bin/sh\necho 'error: this compiler always fails' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CXX", str(failing))
    with pytest.raises(NativeBuildError, match="did not compile") as error:
        native.build(tmp_path / "cache")
    log = str(error.value).rsplit("build log: ", 1)[1]
    assert "this compiler always fails" in open(log).read()
    assert not list((tmp_path / "cache" / "deep-native").glob("*.tmp"))


def test_auto_means_xla_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: ["/physical_device:GPU:0"]
    )
    assert select_kernels("softsign", 0.1, np.float32, "auto").kind == "xla"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="`kernels` must be one of auto, native, xla"):
        select_kernels("softsign", 0.1, np.float32, "fast")
    with pytest.raises(ValueError, match="`kernels`='native' takes float32 or float64"):
        select_kernels("softsign", 0.1, np.float16, "native")
    with pytest.raises(ValueError, match="`threads` must be a positive integer"):
        NativeChunkKernels("softsign", 0.1, threads=0)


def test_default_threads_use_two_cores_unless_told_otherwise(monkeypatch):
    monkeypatch.setattr(native.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    assert native.default_threads() == 2
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 1)
    assert native.default_threads() == 1
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    monkeypatch.setattr(native.os, "sched_getaffinity", lambda pid: {3})
    assert native.default_threads() == 1


@pytest.mark.parametrize(
    "layers, width, batch, dtype, threads",
    [
        (3000, 4, 16, np.float32, 1),
        (3000, 4, 16, np.float32, 2),
        (700, 4, 16, np.float64, 2),
        (700, 2, 20, np.float64, 1),
        (300, 3, 5, np.float64, 1),
    ],
)
def test_the_forward_keeps_the_boundaries_the_backward_would_walk_for(
    built, layers, width, batch, dtype, threads
):
    """`forward_keeping_bounds` gives the op's output and every sub-chunk's input; the
    in-place backward reading them gives the bits of the one that walks the chunk itself."""
    h, g, W, b = chunk(layers, width, batch, dtype, seed=5)
    kernels = NativeChunkKernels("softsign", 0.03, threads=threads)
    out, bounds = kernels.forward_keeping_bounds(h, W, b)
    np.testing.assert_array_equal(out, kernels.forward(h, W, b).numpy())
    sub = native.sub_chunk_layers(1 if dtype == np.float32 else 2, width, batch)
    assert bounds.shape == (-(-layers // sub), batch, width)
    np.testing.assert_array_equal(bounds[0], h)
    if len(bounds) > 1:
        np.testing.assert_array_equal(bounds[1], kernels.forward(h, W[:sub], b[:sub]).numpy())
    W_a, b_a, W_b, b_b = W.copy(), b.copy(), W.copy(), b.copy()
    g_a = kernels.backward_sgd_in_place(h, g, W_a, b_a, 0.1)
    g_b = kernels.backward_sgd_in_place(h, g, W_b, b_b, 0.1, bounds)
    for a, c in ((g_a, g_b), (W_a, W_b), (b_a, b_b)):
        np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError, match="`bounds`"):
        kernels.backward_sgd_in_place(h, g, W_b, b_b, 0.1, bounds[:, :1])


def test_the_kernels_say_which_simd_path_they_run(built):
    kernels = NativeChunkKernels("softsign", 0.1)
    assert kernels.simd == native.simd()
    flags = native.cpu_signature().rsplit("|", 1)[1].split()
    assert kernels.simd == (
        "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse2"
    )


def test_zoo_deep_simd_names_a_path_the_cpu_has(monkeypatch):
    monkeypatch.setenv("ZOO_DEEP_SIMD", "avx2")
    flags = native.cpu_signature().rsplit("|", 1)[1].split()
    if "avx2" in flags:
        assert native.kernel_flags() == (*native.FLAGS, "-mno-avx512f")
    monkeypatch.setenv("ZOO_DEEP_SIMD", "sse9")
    with pytest.raises(NativeBuildError, match="ZOO_DEEP_SIMD=sse9 is not one of native, avx2"):
        native.kernel_flags()
    if "avx512f" not in flags:
        monkeypatch.setenv("ZOO_DEEP_SIMD", "avx512")
        with pytest.raises(NativeBuildError, match="this CPU has no avx512f"):
            native.library_path()


def test_each_simd_path_is_its_own_library(monkeypatch):
    monkeypatch.delenv("ZOO_DEEP_SIMD", raising=False)
    default = native.library_path()
    monkeypatch.setenv("ZOO_DEEP_SIMD", "native")
    assert native.library_path() == default
    if "avx2" in native.cpu_signature():
        monkeypatch.setenv("ZOO_DEEP_SIMD", "avx2")
        assert native.library_path() != default
