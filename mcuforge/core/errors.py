"""The project's error types: messages meant for a person, shown without a traceback.

`McuforgeError` is the base: a problem found while running a stage (missing data, unsupported op, budget exceeded).
`ConfigError` is the subclass for a problem in the configuration itself (pipeline or board YAML, command-line
overrides), already formatted as `file:line:col: field: what is wrong`. `DataError` is the subclass for bad input
data (a missing dataset folder, an unreadable WAV file), naming the file. Catch `McuforgeError` to handle all.
"""


class McuforgeError(Exception):
    """A problem found while running a stage, already worded for a person."""


class ConfigError(McuforgeError):
    """A configuration problem, already formatted for a person (file:line:col: field: what is wrong)."""


class DataError(McuforgeError):
    """A problem with the input data (a dataset folder, a WAV file), naming the file or folder."""
