"""The audio front end (`frontend:` section): raw int16 PCM -> int8 MFCC or log-mel features, the network's input.

The same integer algorithm runs in Python (mcuforge/audio/features.py, training and verification) and in C on the
device (engine_c/src/frontend/), byte for byte."""
from enum import Enum

from pydantic import Field, model_validator

from .common import Strict


class FrontendKind(str, Enum):
    mfcc = "mfcc"
    log_mel = "log_mel"


class FrontendConfig(Strict):
    """Framing, spectrum, mel filter bank, log and (for MFCC) DCT, then int8 quantisation."""

    kind: FrontendKind = Field(default=FrontendKind.log_mel, description="mfcc: DCT of the log-mel energies; log_mel: the log-mel energies.")
    sample_rate: int = Field(default=16000, ge=4000, le=48000, description="Sample rate of the PCM input, Hz.")
    clip_ms: int = Field(default=1000, ge=100, le=10000, description="Length of one inference's audio window, ms.")
    window_ms: float = Field(default=32.0, gt=0, le=128, description="Frame (analysis window) length, ms; a whole number of samples.")
    hop_ms: float = Field(default=31.0, gt=0, le=128, description="Frame step, ms; a whole number of samples.")
    fft_size: int = Field(default=512, ge=64, le=2048, description="Real FFT size: a power of two >= the window length in samples.")
    mel_bins: int = Field(default=32, ge=4, le=128, description="Mel filter bank channels.")
    num_coeffs: int = Field(default=0, ge=0, le=128, description="mfcc: cepstral coefficients kept (1..mel_bins); log_mel: 0.")
    lower_hz: float = Field(default=20.0, ge=0, description="Lowest frequency of the filter bank, Hz.")
    upper_hz: float = Field(default=0.0, ge=0, description="Highest frequency of the filter bank, Hz (0 = sample_rate / 2).")
    log_floor: float = Field(default=1e-6, gt=0, lt=1,
                             description="Energies below log_floor x full scale are clamped before the log (silence floor).")
    output_scale: float = Field(default=0.0, ge=0,
                                description="int8 scale of the features (0 = chosen from the training features' range).")
    output_zero_point: int = Field(default=0, ge=-128, le=127,
                                   description="int8 zero point of the features (used only with output_scale > 0).")

    def samples(self, ms: float) -> int:
        return round(ms * self.sample_rate / 1000)

    @property
    def window_samples(self) -> int:
        return self.samples(self.window_ms)

    @property
    def hop_samples(self) -> int:
        return self.samples(self.hop_ms)

    @property
    def clip_samples(self) -> int:
        return self.samples(self.clip_ms)

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.hop_samples

    @property
    def num_features(self) -> int:
        """Values per frame: num_coeffs for mfcc, mel_bins for log_mel."""
        return self.num_coeffs if self.kind == FrontendKind.mfcc.value else self.mel_bins

    @model_validator(mode="after")
    def _consistent(self) -> "FrontendConfig":
        for name in ("window_ms", "hop_ms", "clip_ms"):
            exact = getattr(self, name) * self.sample_rate / 1000
            if abs(exact - round(exact)) > 1e-9:
                raise ValueError(f"{name}={getattr(self, name)} is not a whole number of samples at {self.sample_rate} Hz")
        if self.fft_size & (self.fft_size - 1):
            raise ValueError(f"fft_size={self.fft_size} is not a power of two")
        if self.window_samples > self.fft_size:
            raise ValueError(f"window_ms={self.window_ms} is {self.window_samples} samples, more than fft_size={self.fft_size}")
        if self.window_samples > self.clip_samples:
            raise ValueError(f"window_ms={self.window_ms} is longer than clip_ms={self.clip_ms}")
        if self.kind == FrontendKind.mfcc.value and not 1 <= self.num_coeffs <= self.mel_bins:
            raise ValueError(f"kind mfcc needs 1 <= num_coeffs <= mel_bins ({self.mel_bins}), got {self.num_coeffs}")
        if self.kind == FrontendKind.log_mel.value and self.num_coeffs:
            raise ValueError("num_coeffs is for kind mfcc; remove it for log_mel")
        nyquist = self.sample_rate / 2
        upper = self.upper_hz or nyquist
        if upper > nyquist or self.lower_hz >= upper:
            raise ValueError(f"need lower_hz < upper_hz <= sample_rate/2 ({nyquist:g}), got {self.lower_hz:g}..{upper:g}")
        return self
