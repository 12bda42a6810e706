"""Builds and loads the deep core's native CPU ops (`deep_core_ops.cc`) on first use.

The ops are compiled against the installed TensorFlow's headers with the machine's C++ compiler
(`$CXX`, else `g++`, `c++` or `clang++` on the `PATH`; `-O3 -march=native`) into a per-user cache:
`$ZOO_CACHE_DIR`, else `$XDG_CACHE_HOME/experiment-zoo`, else `~/.cache/experiment-zoo`, in the
`deep-native/` folder. A library's name holds a key of the TensorFlow version, the sources, the
compile flags and the CPU (model and feature flags), so a new TensorFlow, an edited source or a
different machine sharing a home folder gets its own build.

A build writes to a temporary file and renames it into place, and a sha256 file beside the
library is checked before every load, so a half-written or corrupted entry is rebuilt rather than
loaded. Concurrent first uses are safe: a lock file serializes the builds, and the second process
finds the first one's library.

The SIMD path is the machine's widest (`-march=native`: AVX-512 where the CPU has it) unless
`ZOO_DEEP_SIMD` names a narrower one: `ZOO_DEEP_SIMD=avx2` builds the AVX2/FMA kernels on an
AVX-512 machine (`-mno-avx512f`), so both paths can be measured on one machine; `avx512` insists
on AVX-512 (a one-line error where the CPU lacks it); `native` (or unset) is the default. Each
choice is its own library in the cache, and `simd()` says which instruction set the loaded one
targets.

Example:

>>> from zoo.deep import native
>>> native.library_path().suffix
'.so'
"""

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from zoo.errors import NativeBuildError

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("deep_core_ops.cc", "deep_core_kernels.h")
FLAGS = (
    "-O3",
    "-march=native",
    "-std=c++17",
    "-shared",
    "-fPIC",
    "-fopenmp-simd",
    "-pthread",
    "-Wno-deprecated-declarations",
)
COMPILERS = ("g++", "c++", "clang++")
SIMD_CHOICES = {"native": (), "avx2": ("-mno-avx512f",), "avx512": ()}
SIMD_VARIABLE = "ZOO_DEEP_SIMD"


@dataclass(frozen=True)
class Build:
    """A built library: its path, whether this call compiled it, and the build log."""

    path: Path
    compiled: bool
    log: Path


def cache_root() -> Path:
    """The per-user cache folder of the zoo (not created here)."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "experiment-zoo"


def compiler() -> str:
    """The C++ compiler: `$CXX` if set, else the first of g++, c++, clang++ on the `PATH`.

    Raises:
        NativeBuildError: when there is none (or `$CXX` names no executable).
    """
    named = os.environ.get("CXX")
    if named:
        found = shutil.which(named)
        if not found:
            raise NativeBuildError(f"no C++ compiler: CXX={named} is not an executable")
        return found
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    raise NativeBuildError(
        f"no C++ compiler: none of {', '.join(COMPILERS)} is on the PATH (set CXX)"
    )


def cpu_signature() -> str:
    """The CPU model and feature flags (what `-march=native` compiles for)."""
    model = flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model:
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    return f"{platform.machine()}|{model or platform.processor()}|{flags}"


def simd_choice() -> str:
    """The SIMD path asked for by `$ZOO_DEEP_SIMD`: "native" (default), "avx2" or "avx512".

    Raises:
        NativeBuildError: an unknown value, or a path this CPU does not have.
    """
    choice = (os.environ.get(SIMD_VARIABLE) or "native").strip().lower()
    if choice not in SIMD_CHOICES:
        raise NativeBuildError(f"{SIMD_VARIABLE}={choice} is not one of {', '.join(SIMD_CHOICES)}")
    flags = set(cpu_signature().rsplit("|", 1)[-1].split())
    needed = {"avx2": {"avx2", "fma"}, "avx512": {"avx512f"}}.get(choice, set())
    if needed - flags:
        raise NativeBuildError(
            f"{SIMD_VARIABLE}={choice}: this CPU has no {', '.join(sorted(needed - flags))}"
        )
    return choice


def kernel_flags() -> tuple:
    """The compiler flags of the kernels (`FLAGS` and those of the SIMD choice)."""
    return (*FLAGS, *SIMD_CHOICES[simd_choice()])


def _tensorflow_flags():
    import tensorflow as tf

    return tf.__version__, tf.sysconfig.get_compile_flags(), tf.sysconfig.get_link_flags()


def library_path(cache_dir: Optional[Path] = None) -> Path:
    """Where the library for this TensorFlow, these sources and this CPU lives in the cache."""
    version, compile_flags, link_flags = _tensorflow_flags()
    digest = hashlib.sha256()
    for part in (version, *compile_flags, *link_flags, *kernel_flags(), cpu_signature()):
        digest.update(part.encode() + b"\0")
    for name in SOURCES:
        digest.update((SOURCE_DIR / name).read_bytes())
    folder = Path(cache_dir) if cache_dir is not None else cache_root()
    return folder / "deep-native" / f"deep_core_ops-tf{version}-{digest.hexdigest()[:16]}.so"


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_intact(library: Path) -> bool:
    checksum = library.with_name(library.name + ".sha256")
    try:
        return checksum.read_text().strip() == _file_digest(library)
    except OSError:
        return False


@contextlib.contextmanager
def _build_lock(library: Path):
    """Serializes builds of one library across processes (a no-op where `fcntl` is missing)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(library.with_name(library.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(cache_dir: Optional[Path] = None) -> Build:
    """The native library, compiled unless an intact one is already in the cache.

    Args:
        cache_dir: the cache folder (default `cache_root()`).

    Raises:
        NativeBuildError: no compiler, or the compile failed (the message names the log).
    """
    library = library_path(cache_dir)
    log = library.with_name(library.name[: -len(".so")] + ".log")
    if _is_intact(library):
        return Build(library, False, log)
    library.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(library):
        if _is_intact(library):  # another process built it while this one waited
            return Build(library, False, log)
        cxx = compiler()
        _, compile_flags, link_flags = _tensorflow_flags()
        handle, temporary = tempfile.mkstemp(
            dir=library.parent, prefix=library.name + ".", suffix=".tmp"
        )
        os.close(handle)
        command = [
            cxx,
            *kernel_flags(),
            str(SOURCE_DIR / SOURCES[0]),
            "-o",
            temporary,
            *compile_flags,
            *link_flags,
        ]
        try:
            with open(log, "w") as out:
                out.write(" ".join(command) + "\n")
                out.flush()
                result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
            if result.returncode != 0:
                raise NativeBuildError(
                    f"the native deep-core ops did not compile ({Path(cxx).name} exited "
                    f"{result.returncode}); build log: {log}"
                )
            checksum = library.with_name(library.name + ".sha256")
            checksum_temporary = checksum.with_name(checksum.name + ".tmp")
            checksum_temporary.write_text(_file_digest(Path(temporary)) + "\n")
            os.replace(temporary, library)
            os.replace(checksum_temporary, checksum)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    return Build(library, True, log)


_LOADED = {}  # cache key -> (ops module, library path)


def load(cache_dir: Optional[Path] = None):
    """The ops module (`tf.load_op_library`), built on first use and loaded once per process.

    Raises:
        NativeBuildError: the ops cannot be built or loaded here.
    """
    key = str(Path(cache_dir if cache_dir is not None else cache_root()).resolve())
    if key not in _LOADED:
        import tensorflow as tf

        library = build(cache_dir).path
        try:
            ops = tf.load_op_library(str(library))
        except Exception as error:  # TensorFlow raises NotFoundError (dlopen) and others
            first_line = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise NativeBuildError(
                f"the native deep-core ops in {library} did not load: {first_line}"
            ) from error
        _LOADED[key] = (ops, library)
    return _LOADED[key][0]


_FUNCTIONS = {}  # (cache key, name) -> the ctypes function


def _function(name: str, argtypes: list, restype, cache_dir: Optional[Path] = None):
    """The library's C function `name` (ctypes), the library loaded like `load`."""
    import ctypes

    key = str(Path(cache_dir if cache_dir is not None else cache_root()).resolve())
    load(cache_dir)
    if (key, name) not in _FUNCTIONS:
        function = getattr(ctypes.CDLL(str(_LOADED[key][1])), name)
        function.argtypes = argtypes
        function.restype = restype
        _FUNCTIONS[(key, name)] = function
    return _FUNCTIONS[(key, name)]


def in_place_function(cache_dir: Optional[Path] = None):
    """The library's C function `zoo_deep_backward_sgd_in_place` (ctypes; see
    `deep_core_ops.cc`), which updates caller-owned weight arrays in place, reading the sub-chunk
    boundaries `forward_function` kept (or none). Loads the library like `load`.

    Raises:
        NativeBuildError: the ops cannot be built or loaded here.
    """
    import ctypes

    pointer, size = ctypes.c_void_p, ctypes.c_int64
    scalars = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, size]
    return _function(
        "zoo_deep_backward_sgd_in_place",
        [*scalars, ctypes.c_double, ctypes.c_double, *[pointer] * 6],
        ctypes.c_int,
        cache_dir,
    )


def forward_function(cache_dir: Optional[Path] = None):
    """The library's C function `zoo_deep_forward` (ctypes): a chunk's output and its sub-chunk
    boundaries, for `in_place_function`."""
    import ctypes

    pointer, size = ctypes.c_void_p, ctypes.c_int64
    scalars = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, size]
    return _function(
        "zoo_deep_forward", [*scalars, ctypes.c_double, *[pointer] * 5], ctypes.c_int, cache_dir
    )


def sub_chunk_layers(dtype_code: int, width: int, batch: int) -> int:
    """Layers between two sub-chunk boundaries of the kernels (dtype code 1 float32, 2
    float64)."""
    import ctypes

    function = _function(
        "zoo_deep_sub_chunk_layers", [ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int64
    )
    return int(function(dtype_code, width, batch))


def checksum_function(cache_dir: Optional[Path] = None):
    """The library's C function `zoo_deep_checksum` (ctypes; see `zoo.deep.checksums`)."""
    import ctypes

    pointer, size = ctypes.c_void_p, ctypes.c_int64
    return _function(
        "zoo_deep_checksum", [pointer, size, pointer, size], ctypes.c_uint64, cache_dir
    )


def simd(cache_dir: Optional[Path] = None) -> str:
    """The instruction set the loaded kernels target: "avx512", "avx2", "sse2", ..."""
    import ctypes

    return _function("zoo_deep_simd", [], ctypes.c_char_p, cache_dir)().decode()


def default_threads() -> int:
    """Threads a native kernel uses unless told: 2 where this process may run on two or more
    cores, else 1; TensorFlow's intra-op setting caps it when set
    (`tf.config.threading.set_intra_op_parallelism_threads(1)` gives 1).

    Two threads split the batch (see `deep_core_kernels.h`); the kernels use at most two, and
    one and two give the same bits. On a machine busy with other work one thread is faster
    (the two meet once per sub-chunk and wait for each other): pass `--threads 1` there."""
    import tensorflow as tf

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    return max(1, min(2, cores, intra if intra > 0 else 2))
