"""Architecture spec (`arch.json`): a MobileNetV2/MCUNet-style family of MBConv networks.

The same spec is written by a fixed `search.model` and by the architecture search, and read by training.
Channel counts are multiplied by `width_multiplier` and rounded to a multiple of `channel_divisor`.
"""
from enum import Enum
from typing import Literal

from pydantic import Field, model_validator

from .common import Strict


class Activation(str, Enum):
    relu = "relu"
    relu6 = "relu6"


class ArchInput(Strict):
    resolution: int = Field(ge=4, le=512, description="Input height and width (pixels).")
    channels: Literal[1, 3] = Field(description="Input channels: 1 (grayscale) or 3 (RGB).")


class Stem(Strict):
    channels: int = Field(ge=1, le=4096, description="Output channels of the stem convolution, before width scaling.")
    kernel: Literal[1, 3, 5, 7] = Field(default=3, description="Stem kernel size.")
    stride: Literal[1, 2] = Field(default=2, description="Stem stride.")


class Stage(Strict):
    channels: int = Field(ge=1, le=4096, description="Output channels of the stage's blocks, before width scaling.")
    depth: int = Field(ge=1, le=8, description="Number of MBConv blocks in the stage.")
    stride: Literal[1, 2] = Field(description="Stride of the stage's first block (the others use 1).")
    kernel: Literal[3, 5, 7] | list[Literal[3, 5, 7]] = Field(
        default=3, description="Depthwise kernel size: one for the stage or one per block."
    )
    expansion: int | list[int] = Field(
        default=6, description="Expansion ratio of the inverted bottleneck (1 = no expansion conv): one or one per block."
    )

    @model_validator(mode="after")
    def _per_block_lists(self) -> "Stage":
        for field in ("kernel", "expansion"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) != self.depth:
                raise ValueError(f"{field} has {len(value)} entries but depth is {self.depth}")
            values = value if isinstance(value, list) else [value]
            if field == "expansion" and any(v < 1 or v > 8 for v in values):
                raise ValueError("expansion must be between 1 and 8")
        return self

    def block_kernels(self) -> list[int]:
        return list(self.kernel) if isinstance(self.kernel, list) else [self.kernel] * self.depth

    def block_expansions(self) -> list[int]:
        return list(self.expansion) if isinstance(self.expansion, list) else [self.expansion] * self.depth


class Head(Strict):
    channels: int = Field(default=0, ge=0, le=4096, description="Channels of the 1x1 conv before global pooling (0 = none).")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Dropout before the classifier (training only).")


class ArchSpec(Strict):
    """One network: stem conv -> stages of MBConv blocks -> optional 1x1 head conv -> global average pool -> linear."""

    input: ArchInput = Field(description="Input tensor shape.")
    num_classes: int = Field(ge=2, le=10000, description="Classifier outputs.")
    width_multiplier: float = Field(default=1.0, gt=0.0, le=4.0, description="Scales every channel count.")
    channel_divisor: int = Field(default=8, ge=1, le=64, description="Scaled channel counts are rounded to a multiple of this.")
    activation: Activation = Field(default=Activation.relu6, description="Activation after stem, expansion and depthwise convs.")
    stem: Stem = Field(description="First convolution.")
    stages: list[Stage] = Field(min_length=1, description="MBConv stages, in order.")
    head: Head = Field(default_factory=Head, description="Layers between the last stage and the classifier.")

    @model_validator(mode="after")
    def _strides_divide_resolution(self) -> "ArchSpec":
        stride = self.stem.stride
        for stage in self.stages:
            stride *= stage.stride
        if self.input.resolution % stride != 0:
            raise ValueError(
                f"input.resolution {self.input.resolution} is not divisible by the network's total stride {stride}"
            )
        return self

    def scaled(self, channels: int) -> int:
        """Width-scaled channel count, rounded like MobileNetV2's make_divisible (never below 90% of the target)."""
        target = channels * self.width_multiplier
        divisor = self.channel_divisor
        rounded = max(divisor, int(target + divisor / 2) // divisor * divisor)
        if rounded < 0.9 * target:
            rounded += divisor
        return rounded
