"""The project's own error classes.

The `zoo` CLI turns a `ZooError` into one line on stderr (exit 2; exit 3 for a diverged run) and
lets every other exception keep its traceback, because a genuine bug must stay visible.
"""


class ZooError(Exception):
    """Base class of the errors the CLI reports as one line."""

    exit_code = 2


class UsageError(ZooError, ValueError):
    """A bad argument or flag value; the message names the argument."""


class ResumeMismatchError(UsageError):
    """A resume asked for settings that differ from the run's saved config."""


class RunFolderError(ZooError):
    """A run folder that cannot be used: a file, unwritable, another task's, or in use."""


class CorruptFileError(ZooError, ValueError):
    """A file a run wrote (or reads) is missing, truncated or unreadable; the message names it."""

    def __init__(self, path, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DivergenceError(ZooError):
    """Training produced a non-finite loss; the run is marked failed."""

    exit_code = 3
