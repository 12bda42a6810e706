"""Importing TensorFlow without its C++ start-up chatter.

On import and on first device discovery TensorFlow prints absl, oneDNN and CUDA lines straight
to file descriptor 2 (several of them before absl's logging is initialised, so
`TF_CPP_MIN_LOG_LEVEL` cannot remove them). `import_tensorflow` points descriptor 2 at a
temporary file for exactly that window and restores it; if the import fails, the captured text
is printed before the exception propagates. `--verbose` on the `zoo` CLI keeps the lines.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def silenced_stderr(enabled: bool = True):
    """Redirects the process's stderr (descriptor 2) to a temporary file while active; on an
    exception the captured text is written back to stderr."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow(verbose: bool = False):
    """Imports TensorFlow and Keras, finding the devices, with their start-up lines silenced
    unless `verbose`; returns the `tensorflow` module."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TF_ENABLE_ONEDNN_OPTS is left alone: it changes the numerics (in the last bits), and a run
    # started from the CLI must compute what the same code computes in a user's process.
    with silenced_stderr(not verbose):
        import tensorflow as tf

        tf.config.list_physical_devices()
        import keras  # noqa: F401

    return tf
