"""Error types for failures a user must act on; each message is one line that says what to do."""

import errno
import os


class DriveVisionError(Exception):
    """Base class: the CLI prints these as one line, never as a traceback."""


class WeightsError(DriveVisionError):
    """Weights could not be found, read or fitted to the model."""


class SourceError(DriveVisionError):
    """An input could not be opened or decoded."""


class _SourceOSError(SourceError, OSError):
    """A SourceError that is also the OSError Python raises for the same cause, with its
    ``errno``, ``strerror`` and ``filename``; ``str()`` is the message alone."""

    ERRNO = 0

    def __init__(self, message: str, filename: str | None = None):
        super().__init__(message)
        self.errno, self.strerror = self.ERRNO, os.strerror(self.ERRNO)
        self.filename = filename

    def __str__(self) -> str:
        return Exception.__str__(self)  # not OSError's "[Errno 2] ...: 'name'"

    def __reduce__(self):  # to a batch worker's parent whole, with its file name
        return type(self), (str(self), self.filename)


class SourceNotFoundError(_SourceOSError, FileNotFoundError):
    """An input file or folder that does not exist (``except FileNotFoundError`` takes it)."""

    ERRNO = errno.ENOENT


class SourcePermissionError(_SourceOSError, PermissionError):
    """An input this process may not read (``except PermissionError`` takes it)."""

    ERRNO = errno.EACCES


class SinkError(DriveVisionError):
    """An output could not be written. ``kept``, once the output was closed: where what was
    written of it is kept (its ``.partial`` file), which ``str()`` then names too."""

    kept: str | None = None

    def __str__(self) -> str:
        text = Exception.__str__(self)
        return f"{text}; what was written is kept in {self.kept}" if self.kept else text


class WriteError(SinkError, OSError):
    """An output that failed while the run wrote it (a full disk), not one refused at start:
    the command exits 1, as for a failed stage, not 2. It is the ``OSError`` behind it too
    (``except OSError`` takes it), with its ``errno`` and ``strerror``."""

    def __init__(self, message: str, error: BaseException | None = None):
        super().__init__(message)
        self.errno = getattr(error, "errno", None)
        self.strerror = getattr(error, "strerror", None)


class StageError(DriveVisionError):
    """A pipeline stage failed; ``stage`` names it and ``__cause__`` holds the original error."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(f"{stage} stage failed: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


def input_failure(error: BaseException) -> SourceError | None:
    """The input's own failure behind ``error``: the SourceError itself, or one a pipeline
    stage raised (a video in which no frame decodes); None for any other error."""
    error = error.error if isinstance(error, StageError) else error
    return error if isinstance(error, SourceError) else None


_WHY = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file reached its size limit, ulimit -f or the file system's",
        errno.EROFS: "the file system is read-only", errno.EACCES: "it is not writable",
        errno.EPERM: "it is not writable", errno.EIO: "the disk reported an I/O error",
        errno.EPIPE: "its reader went away"}


def unwritable(error: BaseException) -> str:
    """Why a write failed, as a user reads it: "the disk is full (No space left on
    device)"; never the hidden part file's name that ``OSError`` carries."""
    code = getattr(error, "errno", None)
    reason = getattr(error, "strerror", None) or (os.strerror(code) if code else str(error))
    return f"{_WHY[code]} ({reason})" if code in _WHY else reason
