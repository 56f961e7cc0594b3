"""The `search:` section: a fixed architecture (`model:`), or a TinyNAS search space with budgets and strategy."""
from typing import Literal

from pydantic import Field, model_validator

from .arch import Activation, ArchSpec, Head
from .common import Strict

Kernel = Literal[3, 5, 7]


class StageSpace(Strict):
    """One stage of the space: fixed channels and stride, a choice of depth and per-block kernel and expansion."""

    channels: int = Field(ge=1, le=4096, description="Output channels before width scaling.")
    stride: Literal[1, 2] = Field(description="Stride of the stage's first block.")
    depths: list[int] = Field(default_factory=lambda: [2, 3, 4], min_length=1,
                              description="Depth choices (blocks in the stage), each 1..8.")
    kernels: list[Kernel] = Field(default_factory=lambda: [3, 5, 7], min_length=1,
                                  description="Depthwise kernel choices, per block.")
    expansions: list[int] = Field(default_factory=lambda: [3, 4, 6], min_length=1,
                                  description="Expansion ratio choices, per block, each 1..8.")

    @model_validator(mode="after")
    def _ranges(self) -> "StageSpace":
        if any(d < 1 or d > 8 for d in self.depths):
            raise ValueError(f"depths must be between 1 and 8 (got {self.depths})")
        if any(e < 1 or e > 8 for e in self.expansions):
            raise ValueError(f"expansions must be between 1 and 8 (got {self.expansions})")
        return self


class StemSpace(Strict):
    channels: int = Field(ge=1, le=4096, description="Stem output channels before width scaling.")
    kernel: Literal[1, 3, 5, 7] = Field(default=3, description="Stem kernel size.")
    stride: Literal[1, 2] = Field(default=2, description="Stem stride.")


class SpaceConfig(Strict):
    """The search space (MCUNet's: resolution x width multiplier, then per-stage block choices)."""

    num_classes: int = Field(ge=2, le=10000, description="Classifier outputs (the dataset's class count).")
    resolutions: list[int] = Field(min_length=1, description="Input resolution choices (each divisible by the total stride).")
    width_multipliers: list[float] = Field(min_length=1, description="Width multiplier choices (> 0).")
    stem: StemSpace = Field(description="The stem convolution.")
    stages: list[StageSpace] = Field(min_length=1, description="Stages, in order.")
    head: Head = Field(default_factory=Head, description="Layers between the last stage and the classifier.")
    activation: Activation = Field(default=Activation.relu6, description="Activation of every block.")

    @model_validator(mode="after")
    def _valid(self) -> "SpaceConfig":
        if any(w <= 0 or w > 4 for w in self.width_multipliers):
            raise ValueError(f"width_multipliers must be in (0, 4] (got {self.width_multipliers})")
        stride = self.stem.stride
        for stage in self.stages:
            stride *= stage.stride
        bad = [r for r in self.resolutions if r % stride or r < 4]
        if bad:
            raise ValueError(f"resolutions {bad} are not divisible by the network's total stride {stride} "
                             f"(allowed: multiples of {stride}, at least 4)")
        return self


class Constraints(Strict):
    """Budgets every candidate must meet; 0 means: the board's (SRAM and flash minus reserved bytes)."""

    sram_bytes: int = Field(default=0, ge=0, le=2**32, description="Peak SRAM budget (arena + engine state + stack + I/O); 0 = the board's.")
    flash_bytes: int = Field(default=0, ge=0, le=2**32, description="Flash budget (weights + code); 0 = the board's.")
    macs: int = Field(default=0, ge=0, le=10**15, description="MACs per inference budget (the latency proxy); 0 = none.")
    latency_ms: float = Field(
        default=0.0, ge=0.0, le=1e6,
        description="Latency budget of one inference (ms): the latency cost model's estimate (mcuforge/ml/latency.py, "
        "instructions predicted for the board's core family, one per cycle) at the board's clock; 0 = none.")


class Stage1Config(Strict):
    """Search-space optimisation: the (resolution, width) pair whose satisfying samples have the largest mean MACs."""

    samples: int = Field(default=200, ge=1, le=100000, description="Random architectures sampled per (resolution, width) pair.")
    min_fit_share: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="A pair is eligible only if at least this share of its samples fits the budgets (a space where "
        "almost nothing fits starves the evolution); if no pair reaches it, every pair with a fitting sample is.",
    )


class EvolutionConfig(Strict):
    """Evolutionary search in the chosen space (TinyNAS used population 100, parents 20, 50 mutations + 50
    crossovers, mutation probability 0.1, 30 iterations; defaults are scaled to a 2-core CPU)."""

    population: int = Field(default=8, ge=2, le=1000, description="Candidates per generation.")
    parents: int = Field(default=4, ge=1, le=1000,
                         description="Best candidates kept as parents; population - parents children are trained per "
                                     "generation, so a multiple of search.workers keeps every worker busy.")
    mutation_prob: float = Field(default=0.2, gt=0.0, le=1.0, description="Probability that each gene mutates.")
    crossover_share: float = Field(default=0.5, ge=0.0, le=1.0, description="Share of children made by crossover.")
    iterations: int = Field(default=4, ge=1, le=1000, description="Generations.")

    @model_validator(mode="after")
    def _parents(self) -> "EvolutionConfig":
        if self.parents >= self.population:
            raise ValueError(f"parents ({self.parents}) must be smaller than population ({self.population})")
        return self


class ProxyConfig(Strict):
    """Accuracy proxy: short training from scratch on a subset, accuracy on a held-out part of the training set."""

    epochs: int = Field(default=1, ge=1, le=100, description="Epochs of the short training.")
    train_samples: int = Field(default=6000, ge=10, le=10**7, description="Training samples used (seeded subset).")
    val_samples: int = Field(default=2000, ge=10, le=10**7, description="Held-out training samples for the proxy accuracy.")
    batch_size: int = Field(default=128, ge=1, le=65536, description="Mini-batch size.")
    lr: float = Field(default=0.01, gt=0.0, le=10.0, description="Peak learning rate (AdamW, cosine).")


class SearchConfig(Strict):
    """Architecture: a fixed `model`, or a search (`space` with `constraints`, `stage1`, `evolution`, `proxy`)."""

    model: ArchSpec | None = Field(default=None, description="Fixed architecture to train (written to search/arch.json).")
    space: SpaceConfig | None = Field(default=None, description="Search space (TinyNAS); excludes `model`.")
    constraints: Constraints = Field(default_factory=Constraints, description="Budgets of the search.")
    stage1: Stage1Config = Field(default_factory=Stage1Config, description="Search-space optimisation.")
    evolution: EvolutionConfig = Field(default_factory=EvolutionConfig, description="Evolutionary search.")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig, description="Accuracy proxy.")
    workers: int = Field(default=2, ge=1, le=64, description="Candidates trained in parallel (processes, 1 torch thread each).")
    time_budget_s: float = Field(
        default=0.0, ge=0.0, le=10**7,
        description="Stop starting new generations once stage 2 has run this long (0 = no limit). When it triggers, "
        "the result depends on the machine's speed and is no longer reproducible from the seed alone.",
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="Where candidates are trained: local processes, or Ray (optional dependency, "
        "`pip install ray`; see docs/search.md).")

    @model_validator(mode="after")
    def _one_of(self) -> "SearchConfig":
        if (self.model is None) == (self.space is None):
            raise ValueError("give exactly one of `model` (a fixed architecture) or `space` (a search space)")
        return self
