"""The project's error types: messages meant for a person, shown without a traceback.

`McuforgeError` is the base: a problem found while running a stage, already worded for a person. Each class carries
the process exit code that `doit` ends with when it stops a run (tasks/doit_support.py; the table is in the README),
so a script can tell the kinds apart:

| code | class               | meaning                                                                     |
|------|---------------------|-----------------------------------------------------------------------------|
| 2    | `ConfigError`       | the configuration: pipeline/board YAML, command-line overrides, build= path |
| 4    | `DataError`         | input data or model files: dataset, images, WAV, .onnx/.tflite, no build    |
| 5    | `BudgetError`       | the model does not fit the board (SRAM, flash, stack, latency, MACs)        |
| 6    | `VerificationError` | outputs differ (engine vs ONNX Runtime/TFLite Micro/QEMU), manifest differs |
| 7    | `ToolchainError`    | an external tool failed (CMake, compiler, QEMU) (mcuforge/toolchain)        |
| 70   | (any other)         | internal error: a bug; the traceback is shown                               |

A bare `McuforgeError` counts as an input error (4): most are about what a given model or data set holds. Codes 1
and 3 are left to doit (a failing task that is not ours; an unknown task or option before any task runs).
"""

EXIT_CONFIG = 2
EXIT_INPUT = 4
EXIT_BUDGET = 5
EXIT_VERIFICATION = 6
EXIT_TOOLCHAIN = 7
EXIT_INTERNAL = 70


class McuforgeError(Exception):
    """A problem found while running a stage, already worded for a person."""

    exit_code = EXIT_INPUT
    kind = "input error"


class ConfigError(McuforgeError):
    """A configuration problem, already formatted for a person (file:line:col: field: what is wrong)."""

    exit_code = EXIT_CONFIG
    kind = "configuration error"


class DataError(McuforgeError):
    """A problem with the input data (a dataset folder, a WAV file, a model file), naming the file or folder (and the
    op/node when known)."""

    exit_code = EXIT_INPUT
    kind = "input error"


class BudgetError(McuforgeError):
    """The model needs more than the board (or the pipeline's constraints) allows: need, budget, biggest part."""

    exit_code = EXIT_BUDGET
    kind = "budget exceeded"


class VerificationError(McuforgeError):
    """Outputs or artifacts differ from their reference."""

    exit_code = EXIT_VERIFICATION
    kind = "verification failed"


def exit_code_of(exc: BaseException) -> int:
    """The process exit code for `exc` (EXIT_INTERNAL for anything that is not a McuforgeError)."""
    return getattr(exc, "exit_code", EXIT_INTERNAL) if isinstance(exc, McuforgeError) else EXIT_INTERNAL
