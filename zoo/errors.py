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


class MissingExtraError(ZooError, ImportError):
    """An optional dependency of the zoo is not installed; the message names the extra."""


class NativeBuildError(ZooError):
    """The native ops cannot be built or loaded here; the message says why in one line."""


class ResourceError(ZooError):
    """The settings need more memory or disk than this machine has; the message names the flags
    and the figures."""


class StorageError(ZooError):
    """The operating system refused a file operation (disk full, quota, read-only file system,
    name too long); the message names the file and the cause."""


class Interrupted(ZooError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM) after committing its last step; the run
    is marked interrupted and the same command resumes it."""

    exit_code = 130
