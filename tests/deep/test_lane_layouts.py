"""The lane-group kernels give one and two threads the same bits on every vector width: the
kernel header compiled alone (no TensorFlow) with this machine's vectors, and with 16-lane
vectors emulated (`ZOO_DEEP_VECTOR_BYTES=64`), the layout of AVX-512, where two threads split
one vector of 16 samples into two 8-lane halves. So the AVX-512 path's arithmetic order is
checked on a machine without AVX-512."""

import shutil
import subprocess
from pathlib import Path

import pytest

from zoo.deep import native

HARNESS = Path(__file__).parent / "data" / "lane_layouts.cc"


@pytest.mark.slow
@pytest.mark.parametrize("vector_bytes", [None, 64])
def test_one_and_two_threads_give_the_same_bits(tmp_path, vector_bytes):
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    program = tmp_path / "lanes"
    defines = [f"-DZOO_DEEP_VECTOR_BYTES={vector_bytes}"] if vector_bytes else []
    subprocess.run(
        [
            compiler,
            "-O2",
            "-march=native",
            "-std=c++17",
            "-pthread",
            *defines,
            f"-I{native.SOURCE_DIR}",
            str(HARNESS),
            "-o",
            str(program),
        ],
        check=True,
        capture_output=True,
    )
    result = subprocess.run([str(program)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 9 and all("DIFFER" not in line for line in lines)
    if vector_bytes:
        assert all(line.startswith("lanes=16 ") for line in lines)
