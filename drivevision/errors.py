"""Error types for failures a user must act on; each message is one line that says what to do."""


class DriveVisionError(Exception):
    """Base class: the CLI prints these as one line, never as a traceback."""


class WeightsError(DriveVisionError):
    """Weights could not be found, read or fitted to the model."""


class SourceError(DriveVisionError):
    """An input could not be opened or decoded."""


class SinkError(DriveVisionError):
    """An output could not be written."""


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
