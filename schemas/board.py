"""Board description (`boards/<name>.yaml`): the target's core, memories, QEMU machine, compiler flags and energy figures."""
from enum import Enum

from pydantic import Field, model_validator

from .common import Strict


class Core(str, Enum):
    cortex_m0plus = "cortex-m0plus"
    cortex_m3 = "cortex-m3"
    cortex_m4 = "cortex-m4"
    cortex_m7 = "cortex-m7"
    cortex_m33 = "cortex-m33"
    cortex_m55 = "cortex-m55"


class Fpu(str, Enum):
    none = "none"
    fpv4_sp_d16 = "fpv4-sp-d16"
    fpv5_sp_d16 = "fpv5-sp-d16"
    fpv5_d16 = "fpv5-d16"


class QemuMachine(str, Enum):
    mps2_an385 = "mps2-an385"
    mps2_an386 = "mps2-an386"
    mps2_an500 = "mps2-an500"
    mps2_an505 = "mps2-an505"
    mps3_an547 = "mps3-an547"


# The CPU each QEMU machine emulates (QEMU's MPS2/MPS3 FPGA images), and the FPUs each core can have.
MACHINE_CORE = {"mps2-an385": "cortex-m3", "mps2-an386": "cortex-m4", "mps2-an500": "cortex-m7",
                "mps2-an505": "cortex-m33", "mps3-an547": "cortex-m55"}
CORE_FPUS = {"cortex-m0plus": ("none",), "cortex-m3": ("none",), "cortex-m4": ("none", "fpv4-sp-d16"),
             "cortex-m7": ("none", "fpv5-sp-d16", "fpv5-d16"), "cortex-m33": ("none", "fpv5-sp-d16"),
             "cortex-m55": ("none", "fpv5-d16")}


class Reserved(Strict):
    sram_bytes: int = Field(ge=0, le=2**32, description="SRAM kept for the application and runtime outside the model (bytes).")
    flash_bytes: int = Field(ge=0, le=2**32, description="Flash kept for startup code and the application outside the model (bytes).")


class Qemu(Strict):
    machine: QemuMachine | None = Field(
        description="QEMU `-M` machine that emulates this board's core, or null when QEMU has none "
        "(builds and budgets only, no emulated verification)."
    )


class Compiler(Strict):
    flags: list[str] = Field(
        min_length=1,
        description="arm-none-eabi-gcc target flags: -mcpu, -mthumb, -mfpu, -mfloat-abi.",
    )


class Energy(Strict):
    active_mw: float = Field(gt=0, le=1e6, description="Power while running inference (mW), from the datasheet's run-mode current.")
    sleep_uw: float = Field(gt=0, le=1e9, description="Power while sleeping between inferences (uW).")
    voltage_v: float = Field(gt=0, le=100, description="Supply voltage (V).")


class Board(Strict):
    """A microcontroller board: the budgets come from here."""

    name: str = Field(pattern=r"^[a-z0-9_\-]+$", description="Board name; equals the YAML file's stem.")
    description: str = Field(description="One line: vendor, part, core, memories, clock.")
    core: Core = Field(description="Arm Cortex-M core.")
    fpu: Fpu = Field(description="Floating-point unit; `none` selects the engine's fixed-point requantization by default.")
    clock_mhz: float = Field(gt=0, le=10000, description="Core clock (MHz) used for latency and energy estimates.")
    sram_bytes: int = Field(gt=0, le=2**32, description="Total on-chip SRAM (bytes).")
    flash_bytes: int = Field(gt=0, le=2**32, description="Total on-chip flash (bytes).")
    reserved: Reserved = Field(description="Memory not available to the model.")
    qemu: Qemu = Field(description="Emulation of this board's core under QEMU.")
    compiler: Compiler = Field(description="Cross-compiler flags.")
    energy: Energy = Field(description="Power figures for the energy estimate (the lecture's E = P x t).")

    @model_validator(mode="after")
    def _check(self) -> "Board":
        mcpu = f"-mcpu={self.core}"
        if mcpu not in self.compiler.flags:
            raise ValueError(f"compiler.flags must contain {mcpu} for core {self.core}")
        if self.fpu not in CORE_FPUS[self.core]:
            raise ValueError(f"fpu {self.fpu} does not exist on a {self.core} (possible: "
                             f"{', '.join(CORE_FPUS[self.core])})")
        machine = self.qemu.machine
        if machine is not None and MACHINE_CORE[machine] != self.core:
            fits = [m for m, core in MACHINE_CORE.items() if core == self.core]
            raise ValueError(f"qemu.machine {machine} emulates a {MACHINE_CORE[machine]}, not this board's {self.core}: "
                             "the build would fault or mislead under QEMU; use "
                             + (" or ".join(fits) if fits else "null (QEMU has no machine with this core)"))
        hard = "-mfloat-abi=hard" in self.compiler.flags
        if self.fpu == "none" and hard:
            raise ValueError("compiler.flags has -mfloat-abi=hard but fpu is none")
        if self.fpu != "none" and not hard:
            raise ValueError(f"fpu is {self.fpu} but compiler.flags lacks -mfloat-abi=hard")
        if self.reserved.sram_bytes >= self.sram_bytes:
            raise ValueError("reserved.sram_bytes must be smaller than sram_bytes")
        if self.reserved.flash_bytes >= self.flash_bytes:
            raise ValueError("reserved.flash_bytes must be smaller than flash_bytes")
        return self

    @property
    def has_fpu(self) -> bool:
        return self.fpu != Fpu.none.value

    @property
    def sram_budget(self) -> int:
        return self.sram_bytes - self.reserved.sram_bytes

    @property
    def flash_budget(self) -> int:
        return self.flash_bytes - self.reserved.flash_bytes
