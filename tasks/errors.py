"""The project's error type: a message meant for a person, shown without a traceback."""
from schemas.loader import ConfigError


class McuforgeError(ConfigError):
    """A problem found while running a stage (missing data, unsupported op, budget exceeded...)."""
