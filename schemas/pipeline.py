"""Pipeline YAML (`pipelines/*.yaml`): what to build, from which data, for which board."""
from enum import Enum
from typing import Literal

from pydantic import Field, model_validator

from .anomaly import AutoencoderConfig, MachineSynthConfig
from .frontend import FrontendConfig
from .search import SearchConfig
from .common import Strict


class DatasetKind(str, Enum):
    fashion_mnist = "fashion_mnist"
    sklearn_digits = "sklearn_digits"
    image_folder = "image_folder"
    audio_folder = "audio_folder"
    speech_synth = "speech_synth"
    machine_sound_folder = "machine_sound_folder"
    machine_synth = "machine_synth"


IMAGE_KINDS = ("fashion_mnist", "sklearn_digits", "image_folder")
AUDIO_KINDS = ("audio_folder", "speech_synth", "machine_sound_folder", "machine_synth")
_MACHINE_SOUNDS = (DatasetKind.machine_synth.value, DatasetKind.machine_sound_folder.value)
IMAGE_FIELDS = ("resolution", "channels")
AUDIO_FIELDS = ("sample_rate", "clip_ms", "val_fraction", "samples_per_class", "snr_db", "noise_prob", "voices",
                "variants")


# Class counts known without loading the data (speech_synth: its 12 classes unless dataset.classes picks some).
BUILTIN_CLASSES = {"fashion_mnist": 10, "sklearn_digits": 10, "speech_synth": 12}
LISTED_CLASSES = ("image_folder", "speech_synth")  # kinds whose dataset.classes list is exactly the label set


class DatasetConfig(Strict):
    """Where the samples come from and how they are shaped for the network."""

    kind: DatasetKind = Field(description="Dataset loader.")
    path: str = Field(
        default="",
        description="Folder of the data. fashion_mnist: the idx files (default: Debian's /usr/share/datasets/fashion-mnist); "
        "image_folder: one sub-folder per class, or train/ and test/ each with one sub-folder per class (required); "
        "sklearn_digits: unused; audio_folder: one sub-folder of WAV files per class (Speech Commands layout, "
        "optional _background_noise_/, validation_list.txt, testing_list.txt) (required); machine_sound_folder: "
        "train/normal/*.wav, test/normal/*.wav and test/anomaly/*.wav (DCASE / MIMII / ToyADMOS) (required); "
        "speech_synth: unused. Relative paths are relative to the pipeline YAML's folder.",
    )
    resolution: int | None = Field(
        default=None, ge=4, le=512,
        description="Images are resized to resolution x resolution (required for the image kinds; not for audio).")
    channels: Literal[1, 3] = Field(default=1, description="1 = grayscale, 3 = RGB (image kinds).")
    classes: list[str] = Field(
        default_factory=list,
        description="image_folder / audio_folder: class sub-folders to use, in label order (default: all, sorted; "
        "audio_folder: 'unknown' pools the other word folders and 'silence' cuts clips from _background_noise_ when "
        "no such folder exists); speech_synth: a subset of its 12 classes (default: all).",
    )
    sample_rate: int = Field(default=16000, ge=4000, le=48000,
                             description="Audio kinds: clips are resampled to this rate (Hz).")
    clip_ms: int = Field(default=1000, ge=100, le=60000,
                         description="Audio kinds: clips are cut or zero-padded (start-aligned) to this length (ms).")
    val_fraction: float = Field(
        default=0.1, ge=0.0, lt=1.0,
        description="Audio kinds: share held out for validation (speech_synth: of the voices; audio_folder without "
        "validation_list.txt: of the speakers; machine_sound_folder: of the test clips).")
    samples_per_class: int = Field(
        default=200, ge=1, le=100000,
        description="speech_synth: clips per class over all splits (each synthetic speaker says every keyword once).")
    snr_db: list[float] = Field(
        default=[5.0, 30.0], min_length=2, max_length=2,
        description="Audio kinds: background noise is mixed in at a signal-to-noise ratio drawn uniformly from "
        "[low, high] dB (speech_synth: synthesised white/pink/brown/hum noise, every split; audio_folder: files of "
        "_background_noise_/, training clips only).")
    noise_prob: float = Field(default=0.8, ge=0.0, le=1.0,
                              description="Audio kinds: probability that a clip gets background noise.")
    voices: list[str] = Field(
        default_factory=list,
        description="speech_synth: espeak-ng voice files (`espeak-ng --voices=en`, File column, e.g. gmw/en-US); "
        "default: the seven English gmw/ voices.")
    variants: list[str] = Field(
        default_factory=list,
        description="speech_synth: espeak-ng voice variants (espeak-ng-data/voices/!v, e.g. m3, f2, klatt); "
        "default: m1..m7, f1..f4, croak, klatt, klatt2, klatt3. Test and validation use voice+variant "
        "combinations training never heard.")
    test_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0,
        description="Share of samples held out for test when the source has no test split (sklearn_digits, image_folder).",
    )
    max_train: int = Field(default=0, ge=0, le=10**8, description="Use at most this many training samples (0 = all); for quick runs.")
    max_test: int = Field(default=0, ge=0, le=10**8, description="Use at most this many test samples (0 = all); for quick runs.")
    machine_synth: MachineSynthConfig | None = Field(
        default=None, description="kind machine_synth: machines, clips per split, severity, held-out anomaly kinds.")

    @model_validator(mode="before")
    @classmethod
    def _synth_defaults(cls, data):
        if isinstance(data, dict) and data.get("kind") == "machine_synth" and data.get("machine_synth") is None:
            data = {**data, "machine_synth": {}}
        return data

    @model_validator(mode="after")
    def _kind_fields(self) -> "DatasetConfig":
        if self.kind == DatasetKind.machine_sound_folder.value and not self.path:
            raise ValueError("dataset.path is required for kind machine_sound_folder (train/normal/*.wav, "
                             "test/normal/*.wav, test/anomaly/*.wav)")
        if self.machine_synth is not None and self.kind != DatasetKind.machine_synth.value:
            raise ValueError(f"machine_synth is for kind machine_synth, not {self.kind}")
        return self

    @model_validator(mode="after")
    def _fields_for_the_kind(self) -> "DatasetConfig":
        audio = self.kind in AUDIO_KINDS
        wrong = [name for name in (IMAGE_FIELDS if audio else AUDIO_FIELDS) if name in self.model_fields_set]
        if wrong:
            family, other = ("audio", "image") if audio else ("image", "audio")
            raise ValueError(f"{', '.join(wrong)}: for {other} datasets, not kind {self.kind} ({family})")
        if not audio and self.resolution is None:
            raise ValueError(f"missing required field 'resolution' for kind {self.kind} "
                             "(images are resized to resolution x resolution)")
        if self.kind in ("image_folder", "audio_folder", "machine_sound_folder") and not self.path:
            raise ValueError(f"dataset.path is required for kind {self.kind}")
        if self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"snr_db {list(self.snr_db)}: low must not exceed high")
        if audio and self.test_fraction + self.val_fraction >= 1.0:
            raise ValueError(f"test_fraction ({self.test_fraction}) + val_fraction ({self.val_fraction}) must be < 1")
        return self


class Optimizer(str, Enum):
    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"


class TrainConfig(Strict):
    """Training recipe (CPU, deterministic)."""

    epochs: int = Field(ge=1, le=1000, description="Passes over the training set.")
    batch_size: int = Field(default=128, ge=1, le=65536, description="Mini-batch size.")
    lr: float = Field(default=0.01, gt=0.0, le=10.0, description="Peak learning rate (cosine schedule with one warm-up epoch).")
    optimizer: Optimizer = Field(default=Optimizer.adamw, description="Optimizer.")
    weight_decay: float = Field(default=5e-4, ge=0.0, le=10.0, description="Weight decay.")
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0, description="Label smoothing of the cross-entropy.")
    augment: bool = Field(default=False, description="Random horizontal flips and 2-pixel shifts.")
    threads: int = Field(
        default=2, ge=0, le=256,
        description=("torch CPU threads. Fixed (2) by default so machines with other core counts train the same weights "
                     "(1 and 2 threads train different ones); 0 = torch's default, one per core. The environment "
                     "variable MCUFORGE_THREADS overrides it (the test suite runs one thread per xdist worker)."),
    )


class Granularity(str, Enum):
    per_channel = "per_channel"
    per_tensor = "per_tensor"


class RequantMode(str, Enum):
    auto = "auto"
    float = "float"
    fixed = "fixed"


class QuantFormat(str, Enum):
    qoperator = "qoperator"
    qdq = "qdq"


class QuantizeConfig(Strict):
    """Post-training static int8 quantization with ONNX Runtime."""

    format: QuantFormat = Field(
        default=QuantFormat.qoperator,
        description="ONNX int8 format: qoperator (QLinearConv, QLinearAdd, QGemm...: ONNX Runtime runs exactly these "
        "integer kernels, so the engine is verified bit for bit) or qdq (QuantizeLinear/DequantizeLinear around float "
        "ops: ONNX Runtime fuses some patterns and runs others in float, so exact equality is not guaranteed).",
    )
    granularity: Granularity = Field(
        default=Granularity.per_channel,
        description="Weight scales: one per output channel, or one per tensor (the lecture's per-layer scheme).",
    )
    calibration_samples: int = Field(default=512, ge=1, le=100000, description="Training samples used to calibrate activation ranges.")
    requant: RequantMode = Field(
        default=RequantMode.auto,
        description="Engine requantization: float (exact vs ONNX Runtime, needs an FPU to be fast), "
        "fixed (int32 multiplier + shift, TFLite rounding), auto (float on boards with an FPU, else fixed).",
    )


class Planner(str, Enum):
    greedy_by_size = "greedy_by_size"
    best = "best"


class PatchStage(Strict):
    """A fixed patch-based stage (MCUNetV2): the model's first `layers` layers run patch by patch."""

    layers: int = Field(ge=1, le=10000, description="How many of the model's first layers (ONNX order) run per patch; "
                        "the last one's output is the first tensor computed whole.")
    grid: list[int] = Field(min_length=2, max_length=2, description="Patches as [rows, columns] of that output, "
                            "each 1..64 and at most its height/width.")

    @model_validator(mode="after")
    def _grid_range(self):
        if any(not 1 <= n <= 64 for n in self.grid) or self.grid == [1, 1]:
            raise ValueError(f"grid {self.grid}: rows and columns must be 1..64 and not both 1")
        return self


class ScheduleConfig(Strict):
    """Memory planning of the activation arena (mcuforge/schedule/planner.py)."""

    planner: Planner = Field(
        default=Planner.best,
        description="Arena planner: greedy_by_size (TensorFlow Lite Micro's: largest first, first fit, ONNX op order) "
        "or best (ours: several op orders and placement heuristics, exact search on small graphs; never larger than "
        "greedy_by_size, which every plan also reports).",
    )
    inplace_depthwise: bool = Field(
        default=True,
        description="Let a depthwise convolution that is the last reader of its input write its output over it "
        "(a few rows of scratch instead of a second tensor). Outputs are byte-identical.",
    )
    reorder: bool = Field(
        default=True,
        description="best: also try the topological op order that minimises the peak of live bytes (branches: "
        "residual adds, concats); codegen runs the ops in the plan's order.",
    )
    patch: Literal["off", "auto"] | PatchStage = Field(
        default="off",
        description="Patch-based inference (MCUNetV2): off; auto (the first layers and the patch grid that give the "
        "smallest arena within patch_max_macs_overhead, if that beats layer by layer); or {layers, grid}. Outputs "
        "are byte-identical to layer by layer.",
    )
    patch_max_macs_overhead: float = Field(
        default=0.2, ge=0.0, le=10.0,
        description="auto patching: the largest extra MACs (halo recomputation) allowed, as a fraction of the "
        "model's MACs (0.2 = +20%).",
    )
    fuse_mbconv: bool = Field(
        default=True,
        description="Run an inverted bottleneck (1x1 expansion, depthwise, 1x1 projection) as one fused op, row band "
        "by row band, so its expanded tensor is never whole in memory; only the blocks that lower the planned arena "
        "are fused. Outputs are byte-identical.",
    )


class DeployConfig(Strict):
    """Target board and verification."""

    board: str = Field(
        pattern=r"^[A-Za-z0-9_\-./]+$",
        description="Board name (boards/<board>.yaml) or a path to a board YAML ending in .yaml, relative to the pipeline YAML.",
    )
    verify_samples: int = Field(default=100, ge=1, le=100000, description="Test samples compared with ONNX Runtime.")
    layer_samples: int = Field(default=3, ge=0, le=1000, description="Samples whose every layer output is compared.")
    emulate: bool = Field(default=True, description="Run the cross-compiled binary under QEMU when the board has a machine.")
    model: str = Field(
        default="", pattern=r"^$|^.+\.(tflite|onnx)$",
        description="A ready int8 model instead of data/search/train/quantize: a .tflite file (verified byte for byte "
        "against the TFLite Micro interpreter, fixed requantization) or an already quantized .onnx file (against ONNX "
        "Runtime), relative to the pipeline YAML. Verification then uses verify_samples random inputs (seed). "
        "Empty = train the pipeline's own model.",
    )
    export_unverified: bool = Field(
        default=False,
        description="Write the export (build/<name>/export/) even when verification failed or did not run; its README "
        "then says so. Command line: export_unverified=1.",
    )
    latency_ms: float | None = Field(
        default=None, gt=0, le=1e6,
        description="Latency budget of one inference (ms), checked by `doit review` against the instructions counted "
        "under QEMU (or MACs) over the board's clock; null = not set.",
    )
    battery_mah: float = Field(
        default=500.0, gt=0, le=1e7,
        description="Battery capacity (mAh) for the review's energy estimate, at the board's energy.voltage_v "
        "(default: the lecture's 500 mAh example).",
    )
    inferences_per_day: int = Field(
        default=86400, ge=1, le=10**9,
        description="Inferences per day for the review's battery-life estimate (sleeping in between; default: one per second).",
    )


class PipelineConfig(Strict):
    """A whole pipeline: data -> architecture -> training -> int8 -> schedule -> C -> verified binary."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="Pipeline name; artifacts go to build/<name>/.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of every random choice (data order, init, search).")
    dataset: DatasetConfig | None = Field(default=None, description="Data (required unless deploy.model is set).")
    search: SearchConfig | None = Field(default=None, description="Architecture (required unless deploy.model is set).")
    train: TrainConfig | None = Field(default=None, description="Training (required unless deploy.model is set).")
    autoencoder: AutoencoderConfig | None = Field(
        default=None, description="Anomaly detection: a reconstruction autoencoder over the front end's frames instead "
        "of search (its own small search space); the device returns the clip's anomaly score and decision.")
    frontend: FrontendConfig | None = Field(
        default=None, description="Audio front end (raw PCM -> int8 features, run on the device before the network).")
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig, description="Quantization.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Memory planning.")
    deploy: DeployConfig = Field(description="Deployment target.")

    @model_validator(mode="before")
    @classmethod
    def _frontend_takes_the_clips_of_the_dataset(cls, data):
        """frontend.sample_rate and clip_ms default to the dataset's (given in both, they must agree: checked below)."""
        if isinstance(data, dict) and isinstance(data.get("frontend"), dict) and isinstance(data.get("dataset"), dict):
            frontend = dict(data["frontend"])
            for key in ("sample_rate", "clip_ms"):
                if key not in frontend and key in data["dataset"]:
                    frontend[key] = data["dataset"][key]
            data = {**data, "frontend": frontend}
        return data

    @model_validator(mode="after")
    def _sections_for_the_model(self) -> "PipelineConfig":
        """dataset, search and train are required to train a model, and unused (so not allowed) with deploy.model."""
        given = [name for name in ("dataset", "search", "train") if getattr(self, name) is not None]
        if self.deploy.model and given:
            raise ValueError(f"deploy.model ({self.deploy.model}) replaces data, search, training and quantization: "
                             f"remove {', '.join(given)}")
        if not self.deploy.model:
            for name in ("dataset", "train") if self.autoencoder is not None else ("dataset", "search", "train"):
                if getattr(self, name) is None:
                    description = type(self).model_fields[name].description
                    raise ValueError(f"missing required field '{name}' ({description})")
        return self

    @model_validator(mode="after")
    def _ready_autoencoder(self) -> "PipelineConfig":
        """deploy.model with an autoencoder section: a ready int8 autoencoder scored from raw PCM on the device; the
        front end gives its input and the threshold is stated (no validation clips to choose it on). Its input and
        output shapes are checked against the front end when the model is read (tasks/config.py)."""
        if not self.deploy.model or self.autoencoder is None:
            return self
        if not self.deploy.model.endswith(".tflite"):
            raise ValueError(f"autoencoder with deploy.model ({self.deploy.model}): a ready autoencoder is an int8 "
                             ".tflite model (like MLPerf Tiny's); an ONNX autoencoder is trained here (dataset, train)")
        if self.frontend is None:
            raise ValueError(f"autoencoder with deploy.model ({self.deploy.model}) needs a `frontend:` section: the "
                             "device computes the model's input frames from raw PCM")
        if self.autoencoder.threshold <= 0:
            raise ValueError("autoencoder.threshold: a ready model (deploy.model) has no validation clips to choose "
                             "the decision threshold on: give it (the score's mean squared error, real units, > 0)")
        if self.autoencoder.space is not None:
            raise ValueError("autoencoder.space: nothing is searched with deploy.model; remove it")
        if self.autoencoder.frames > self.frontend.num_frames:
            raise ValueError(f"autoencoder.frames ({self.autoencoder.frames}) is more than the front end's "
                             f"{self.frontend.num_frames} frames per clip")
        return self

    @model_validator(mode="after")
    def _frontend_shapes_the_input(self) -> "PipelineConfig":
        """The front end's features (frames x values, one channel) are the network's input, as a square map
        (a classifier; an autoencoder takes windows of frames: _anomaly_sections)."""
        if self.frontend is None and not self.deploy.model and self.autoencoder is None \
                and self.dataset.kind in AUDIO_KINDS:
            raise ValueError(f"dataset.kind {self.dataset.kind} needs a frontend: section (kind log_mel or mfcc): its "
                             "features are the network's input")
        if self.frontend is None or self.autoencoder is not None:
            return self
        if self.deploy.model:
            raise ValueError("frontend: is for pipelines that train their network (dataset + search + train); "
                             "remove it with deploy.model")
        frames, values = self.frontend.num_frames, self.frontend.num_features
        if frames != values:
            raise ValueError(f"frontend: gives {frames} frames x {values} values per frame; the network's input must "
                             "be square for now: choose hop_ms/clip_ms and mel_bins (or num_coeffs) so they are equal")
        if self.dataset.kind not in AUDIO_KINDS:
            raise ValueError(f"frontend: turns audio clips into features; dataset.kind {self.dataset.kind} is not an "
                             f"audio kind ({', '.join(AUDIO_KINDS)})")
        resolutions = [self.search.model.input.resolution] if self.search.model else self.search.space.resolutions
        if set(resolutions) != {frames}:
            raise ValueError(f"search resolutions must be [{frames}] with a front end (features are not resized), "
                             f"got {resolutions}")
        return self

    @model_validator(mode="after")
    def _classes_match_data(self) -> "PipelineConfig":
        """num_classes against the class count known without loading data (built-in sets, an explicit classes list)."""
        if self.deploy.model or self.search is None:  # (an autoencoder has no classes)
            return self
        listed = len(self.dataset.classes) if self.dataset.kind in LISTED_CLASSES else 0
        known = listed or BUILTIN_CLASSES.get(self.dataset.kind, 0)
        field, arch = ("search.model", self.search.model) if self.search.model is not None else \
            ("search.space", self.search.space)
        if known and arch is not None and arch.num_classes != known:
            source = (f"dataset.classes ({', '.join(self.dataset.classes)})" if listed
                      else f"dataset.kind {self.dataset.kind}")
            raise ValueError(f"{field}.num_classes is {arch.num_classes} but {source} has {known} classes")
        return self

    @model_validator(mode="after")
    def _model_matches_data(self) -> "PipelineConfig":
        if self.deploy.model:
            return self
        if self.autoencoder is not None or self.dataset.kind in _MACHINE_SOUNDS:
            return self._anomaly_sections()
        if self.dataset.kind in AUDIO_KINDS:
            front = self.frontend
            if front is not None and (front.sample_rate, front.clip_ms) != (self.dataset.sample_rate, self.dataset.clip_ms):
                raise ValueError(f"dataset sample_rate/clip_ms ({self.dataset.sample_rate} Hz, {self.dataset.clip_ms} ms) "
                                 f"differ from the frontend's ({front.sample_rate} Hz, {front.clip_ms} ms)")
            return self
        arch = self.search.model
        if arch is None:
            if max(self.search.space.resolutions) > self.dataset.resolution:
                raise ValueError(f"search.space.resolutions go up to {max(self.search.space.resolutions)} but "
                                 f"dataset.resolution is {self.dataset.resolution}: images are only resized down")
            return self
        if arch.input.resolution != self.dataset.resolution:
            raise ValueError(
                f"search.model.input.resolution ({arch.input.resolution}) differs from dataset.resolution "
                f"({self.dataset.resolution})"
            )
        if arch.input.channels != self.dataset.channels:
            raise ValueError(
                f"search.model.input.channels ({arch.input.channels}) differs from dataset.channels ({self.dataset.channels})"
            )
        return self

    def _anomaly_sections(self) -> "PipelineConfig":
        if self.autoencoder is None or self.frontend is None or self.search is not None:
            raise ValueError("an anomaly pipeline (dataset.kind machine_synth or an autoencoder section) needs "
                             "`autoencoder` and `frontend` sections and no `search` section")
        if self.dataset.kind not in _MACHINE_SOUNDS:
            raise ValueError(f"autoencoder: dataset.kind {self.dataset.kind} is not a machine sound dataset "
                             f"(allowed: {', '.join(_MACHINE_SOUNDS)})")
        if self.autoencoder.frames > self.frontend.num_frames:
            raise ValueError(f"autoencoder.frames ({self.autoencoder.frames}) is more than the front end's "
                             f"{self.frontend.num_frames} frames per clip")
        if self.autoencoder.threshold > 0:
            raise ValueError("autoencoder.threshold is for a ready model (deploy.model); a trained autoencoder's "
                             "threshold is chosen on validation (autoencoder.threshold_fpr)")
        return self
