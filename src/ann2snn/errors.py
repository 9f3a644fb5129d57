"""The one exception family of ann2snn.

Every error raised at the public boundary derives from :class:`Ann2SnnError` and carries a message that says what
is wrong and what to do. The CLI prints such errors as one line and exits with code 2.
"""

from __future__ import annotations


class Ann2SnnError(Exception):
    """Base class of every ann2snn error."""


class ConfigError(Ann2SnnError, ValueError):
    """An invalid configuration value (T <= 0, L <= 0, leak outside (0, 1], unknown method, ...)."""


class UnsupportedModelError(Ann2SnnError, TypeError):
    """A layer or op that the requested transform cannot handle; names the module path or node."""


class InputError(Ann2SnnError, ValueError):
    """Input of the wrong shape or dtype, or containing NaN/Inf."""


class CalibrationError(Ann2SnnError, ValueError):
    """Calibration could not run, e.g. empty calibration data."""


class DatasetError(Ann2SnnError, FileNotFoundError):
    """A dataset's files are missing or unreadable; the message says how to get them."""


class CheckpointError(Ann2SnnError, ValueError):
    """A checkpoint is missing, truncated, corrupt, or of another architecture."""


class ExportError(Ann2SnnError, ValueError):
    """The model cannot be exported faithfully to the requested format."""


class OutputError(Ann2SnnError, OSError):
    """An output path ann2snn will not write: a directory, FIFO, socket or device instead of a regular file."""


class ResourceError(Ann2SnnError, RuntimeError):
    """A resource the run needs is not there: too little memory for a simulation (the message gives the estimate
    and how to shrink it), or an output folder another run is writing to (the message names that run)."""


class CalibrationWarning(UserWarning):
    """Calibration ran, but on too little data for what it fits; the message says what was done instead."""


__all__ = [
    "Ann2SnnError",
    "CalibrationError",
    "CalibrationWarning",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "ExportError",
    "InputError",
    "OutputError",
    "ResourceError",
    "UnsupportedModelError",
]
