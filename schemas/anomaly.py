"""Anomaly detection sections: the `machine_synth` dataset (`dataset.machine_synth`) and the `autoencoder:` model
family with its small search space and the rule that chooses the decision threshold."""
from typing import Literal

from pydantic import Field, model_validator

from .common import Strict

AnomalyKind = Literal["bearing", "harmonic", "imbalance", "rubbing", "noise_floor"]
ANOMALY_KINDS = ("bearing", "harmonic", "imbalance", "rubbing", "noise_floor")  # = mcuforge.audio.machine_synth.KINDS


class MachineSynthConfig(Strict):
    """Synthetic rotating machines (mcuforge/audio/machine_synth.py); clip length and rate are the front end's."""

    machine_ids: list[str] = Field(
        default_factory=lambda: ["id_00", "id_01", "id_02", "id_03"], min_length=1,
        description="Machine ids; each name (with the seed) draws its own machine (speed, harmonics, noise colour).")
    train_clips: int = Field(default=200, ge=1, le=100000, description="Normal training clips per machine id.")
    val_clips: int = Field(default=40, ge=1, le=100000,
                           description="Validation clips per machine id: this many normal and this many anomalous.")
    test_clips: int = Field(default=100, ge=1, le=100000,
                            description="Test clips per machine id: this many normal and this many anomalous.")
    severity: float = Field(default=0.5, gt=0.0, le=2.0,
                            description="Anomaly severity (1 = clearly visible; each clip draws [0.5, 1] x this).")
    held_out_kinds: list[AnomalyKind] = Field(
        default_factory=lambda: ["rubbing", "noise_floor"],
        description=f"Anomaly kinds that appear only in test (never in validation); kinds: {', '.join(ANOMALY_KINDS)}.")

    @model_validator(mode="after")
    def _some_kind_for_validation(self) -> "MachineSynthConfig":
        if len(set(self.held_out_kinds)) >= len(ANOMALY_KINDS):
            raise ValueError("held_out_kinds holds every kind: validation needs at least one anomaly kind "
                             f"(kinds: {', '.join(ANOMALY_KINDS)})")
        if len(set(self.machine_ids)) != len(self.machine_ids):
            raise ValueError(f"machine_ids has duplicates: {self.machine_ids}")
        return self


class AutoencoderSpace(Strict):
    """Search over hidden width and bottleneck (every combination that fits the board is trained briefly; the best
    validation AUC wins)."""

    widths: list[int] = Field(min_length=1, description="Hidden width choices (every hidden layer), each 8..1024.")
    bottlenecks: list[int] = Field(min_length=1, description="Bottleneck width choices, each 2..256.")
    epochs: int = Field(default=5, ge=1, le=200, description="Epochs of each candidate's short training.")

    @model_validator(mode="after")
    def _ranges(self) -> "AutoencoderSpace":
        if any(not 8 <= w <= 1024 for w in self.widths) or any(not 2 <= b <= 256 for b in self.bottlenecks):
            raise ValueError(f"widths must be 8..1024 and bottlenecks 2..256 (got {self.widths}, {self.bottlenecks})")
        return self


class AutoencoderConfig(Strict):
    """A reconstruction autoencoder over `frames` stacked feature frames (MLPerf Tiny's anomaly model: 5 x 128 = 640
    -> 128-128-128-128-8-128-128-128-128 -> 640, Linear + BatchNorm + ReLU), trained with MSE on normal clips only.
    The anomaly score of a clip is the mean squared reconstruction error over its vectors (frames - `frames` + 1 of
    them, each `frames` consecutive frames), dequantised; the engine computes it on the device."""

    kind: Literal["dense", "conv"] = Field(
        default="dense", description="dense: fully connected (MLPerf Tiny); conv: two 3x3 stride-2 convolutions over "
        "(frames, features), then fully connected bottleneck and decoder.")
    frames: int = Field(default=5, ge=1, le=64, description="Consecutive feature frames per input vector.")
    width: int = Field(default=128, ge=8, le=1024, description="Width of every hidden layer (conv: channels x 4).")
    depth: int = Field(default=4, ge=1, le=8, description="Hidden layers on each side of the bottleneck (dense).")
    bottleneck: int = Field(default=8, ge=2, le=256, description="Bottleneck width.")
    space: AutoencoderSpace | None = Field(default=None, description="Search width and bottleneck (null = fixed).")
    threshold_fpr: float = Field(
        default=0.1, gt=0.0, lt=1.0,
        description="Decision threshold rule: the score quantile of the validation normal clips at 1 - this value "
        "(the target false-alarm rate on validation normals).")
    threshold: float = Field(
        default=0.0, ge=0.0, le=1e12,
        description="The decision threshold on the score (mean squared reconstruction error, real units) for a ready "
        "model (deploy.model), which has no validation clips to choose it on; 0 = choose it with threshold_fpr "
        "(trained pipelines).")
