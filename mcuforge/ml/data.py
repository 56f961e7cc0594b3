"""Datasets: load, resize and cache as uint8 NHWC arrays with a dataset card.

Kinds: `fashion_mnist` (Debian's dataset-fashion-mnist, 60k/10k), `sklearn_digits` (scikit-learn's bundled 8x8
digits, for fast tests), `image_folder` (one sub-folder per class; or train/ and test/ each with class sub-folders).
The network sees `x / 255` as float in NCHW; the int8 engine sees the quantized version of that.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuforge.core.errors import DataError, McuforgeError
from mcuforge.core.io import read_json, sha256_file, write_json, write_npy
from mcuforge.ml.audio_data import AUDIO_KINDS, check_audio_available

FASHION_DEFAULT = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".webp"}
SPLITS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class Dataset:
    x_train: np.ndarray  # uint8 [N, H, W, C]
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str


def dataset_path(dataset: dict, yaml_dir: Path) -> Path:
    """The folder the dataset section points to (default per kind), absolute."""
    if not dataset["path"]:
        return FASHION_DEFAULT if dataset["kind"] == "fashion_mnist" else Path()
    path = Path(dataset["path"]).expanduser()
    return path if path.is_absolute() else (yaml_dir / path).resolve()


def check_available(dataset: dict, yaml_dir: Path) -> None:
    """Cheap presence check done when the config is loaded, so a missing dataset is reported before any work."""
    kind = dataset["kind"]
    if kind in AUDIO_KINDS:
        from mcuforge.ml.audio_data import check_audio_available

        check_audio_available(dataset, yaml_dir)
        return
    path = dataset_path(dataset, yaml_dir)
    if kind == "fashion_mnist":
        missing = [name for name in FASHION_FILES.values() if not (path / name).is_file()]
        if missing:
            raise McuforgeError(
                f"dataset.path: Fashion-MNIST not found in {path} (missing {', '.join(missing)}). "
                "Install it with `apt-get install --no-install-recommends dataset-fashion-mnist` (Debian), "
                "or set dataset.path to a folder holding the four idx .gz files."
            )
    elif kind == "image_folder":
        if not path.is_dir():
            raise McuforgeError(
                f"dataset.path: image folder {path} does not exist. It must hold one sub-folder per class "
                "(e.g. person/ and non_person/ with images), or train/ and test/ each with those sub-folders. "
                "Point to it with dataset.path=<folder> on the command line or in the YAML."
            )
        _image_folder_classes(path, dataset["classes"])
    elif kind in AUDIO_KINDS:
        check_audio_available(dataset, yaml_dir)


def _read_idx(path: Path) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if len(raw) < 4 or magic >> 8 != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: not an unsigned-byte idx file (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) != 4 + 4 * ndim + int(np.prod(dims, dtype=np.float64)):
        raise DataError(f"{path}: truncated or padded idx file: {len(raw):,} bytes for shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _resize(images: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """uint8 [N, H, W] or [N, H, W, C] -> uint8 [N, res, res, channels] (bilinear via Pillow when sizes differ)."""
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1] != resolution or images.shape[2] != resolution:
        from PIL import Image

        mode = "L" if images.shape[3] == 1 else "RGB"
        resized = [
            np.asarray(Image.fromarray(img.squeeze(-1) if mode == "L" else img, mode).resize(
                (resolution, resolution), Image.BILINEAR))
            for img in images
        ]
        images = np.stack(resized)
        if images.ndim == 3:
            images = images[..., None]
    if images.shape[3] != channels:
        if channels == 3:
            images = np.repeat(images, 3, axis=3)
        else:  # RGB -> luma, ITU-R 601
            weights = np.array([0.299, 0.587, 0.114])
            images = np.round(images.astype(np.float64) @ weights).clip(0, 255).astype(np.uint8)[..., None]
    return np.ascontiguousarray(images, dtype=np.uint8)


def _load_fashion(path: Path) -> tuple[dict, list[str]]:
    arrays = {key: _read_idx(path / name) for key, name in FASHION_FILES.items()}
    return arrays, FASHION_CLASSES


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> dict:
    """Stratified, seeded split."""
    rng = np.random.default_rng(seed)
    test_idx = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        test_idx.extend(idx[: max(1, int(round(len(idx) * test_fraction)))])
    mask = np.zeros(len(y), dtype=bool)
    mask[test_idx] = True
    return {"x_train": x[~mask], "y_train": y[~mask], "x_test": x[mask], "y_test": y[mask]}


def _load_digits(test_fraction: float, seed: int) -> tuple[dict, list[str]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return _split(images, digits.target.astype(np.int64), test_fraction, seed), [str(i) for i in range(10)]


def _image_folder_classes(root: Path, wanted: list[str]) -> list[str]:
    base = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
    present = sorted(p.name for p in base.iterdir() if p.is_dir())
    classes = list(wanted) or present
    missing = [c for c in classes if c not in present]
    if missing or len(classes) < 2:
        raise McuforgeError(
            f"dataset.path: {base} must hold one sub-folder per class; "
            + (f"missing {', '.join(missing)}" if missing else f"found {len(present)} class folder(s): {present}")
        )
    return classes


def _image_files(folder: Path) -> list[Path]:
    """The image files under `folder`, sorted; symbolic links are followed except into a folder already visited
    (a loop), which is an DataError naming the link."""
    files = []
    visited: set[str] = set()
    for here, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in visited:
            raise DataError(f"dataset.path: symbolic link loop: {here} leads back to {real}, already read")
        visited.add(real)
        for name in dirs + names:
            entry = Path(here) / name
            if entry.is_symlink() and not entry.exists():
                raise DataError(f"dataset.path: {entry}: broken or looping symbolic link")
        dirs.sort()
        files += [Path(here) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files)


def _read_images(folder: Path) -> list[np.ndarray]:
    import warnings

    from PIL import Image

    files = _image_files(folder)
    if not files:
        raise DataError(f"dataset.path: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    images = []
    for file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file) as img:
                    images.append(np.asarray(img.convert("RGB")))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(f"dataset.path: {file}: refused, a possible decompression bomb ({exc})") from None
        except Exception as exc:  # noqa: BLE001  (Pillow's decoders raise OSError, SyntaxError, ValueError...)
            raise DataError(f"dataset.path: cannot read image {file}: {type(exc).__name__}: {exc}") from None
    return images


def _load_image_folder(root: Path, wanted: list[str], resolution: int, channels: int,
                       test_fraction: float, seed: int) -> tuple[dict, list[str]]:
    classes = _image_folder_classes(root, wanted)

    def load(base: Path) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for label, name in enumerate(classes):
            images = [_resize(img[None], resolution, channels)[0] for img in _read_images(base / name)]
            xs.extend(images)
            ys.extend([label] * len(images))
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    if (root / "train").is_dir() and (root / "test").is_dir():
        x_train, y_train = load(root / "train")
        x_test, y_test = load(root / "test")
        return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, classes
    x, y = load(root)
    return _split(x, y, test_fraction, seed), classes


def load(dataset: dict, yaml_dir: Path, seed: int) -> Dataset:
    """Load the dataset section's data, resized to its resolution and channels, with max_train/max_test applied."""
    check_available(dataset, yaml_dir)
    kind = dataset["kind"]
    path = dataset_path(dataset, yaml_dir)
    if kind == "fashion_mnist":
        arrays, classes = _load_fashion(path)
        source = str(path)
    elif kind == "sklearn_digits":
        arrays, classes = _load_digits(dataset["test_fraction"], seed)
        source = "sklearn.datasets.load_digits"
    else:
        arrays, classes = _load_image_folder(path, dataset["classes"], dataset["resolution"], dataset["channels"],
                                             dataset["test_fraction"], seed)
        source = str(path)
    for split, limit in (("train", dataset["max_train"]), ("test", dataset["max_test"])):
        if limit and len(arrays[f"y_{split}"]) > limit:
            keep = np.sort(np.random.default_rng(seed + 1).permutation(len(arrays[f"y_{split}"]))[:limit])
            arrays[f"x_{split}"] = arrays[f"x_{split}"][keep]
            arrays[f"y_{split}"] = arrays[f"y_{split}"][keep]
    for split in ("train", "test"):
        arrays[f"x_{split}"] = _resize(arrays[f"x_{split}"], dataset["resolution"], dataset["channels"])
        arrays[f"y_{split}"] = arrays[f"y_{split}"].astype(np.int64)
    return Dataset(classes=classes, source=source, **arrays)


def write_cache(data: Dataset, out_dir: Path, num_classes: int) -> dict:
    """Write the arrays (.npy) and the dataset card; returns the card."""
    if len(data.classes) != num_classes:
        raise McuforgeError(
            f"search.model.num_classes is {num_classes} but the dataset has {len(data.classes)} classes "
            f"({', '.join(data.classes)})"
        )
    for key in SPLITS:
        write_npy(out_dir / f"{key}.npy", getattr(data, key))
    card = {
        "source": data.source,
        "classes": data.classes,
        "shape": list(data.x_train.shape[1:]),
        "layout": "NHWC uint8; the network input is x / 255",
        "counts": {
            split: {
                "total": int(len(getattr(data, f"y_{split}"))),
                "per_class": {name: int((getattr(data, f"y_{split}") == i).sum()) for i, name in enumerate(data.classes)},
            }
            for split in ("train", "test")
        },
        "sha256": {f"{key}.npy": sha256_file(out_dir / f"{key}.npy") for key in SPLITS},
    }
    write_json(out_dir / "card.json", card)
    return card


def read_cache(data_dir: Path, resolution: int | None = None) -> Dataset:
    """The cached dataset; resized to `resolution` when given and different (the search may pick a smaller input)."""
    card = read_json(data_dir / "card.json")
    arrays = {key: np.load(data_dir / f"{key}.npy", allow_pickle=False) for key in SPLITS}
    if resolution is not None and arrays["x_train"].shape[1] != resolution:
        channels = arrays["x_train"].shape[3]
        for key in ("x_train", "x_test"):
            arrays[key] = _resize(arrays[key], resolution, channels)
    return Dataset(classes=card["classes"], source=card["source"], **arrays)


def read_for_arch(paths) -> Dataset:
    """The cached dataset at the input resolution of search/arch.json."""
    return read_cache(paths.data, read_json(paths.arch)["input"]["resolution"])


def to_float_nchw(x: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [0, 1]: the network's input convention."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def num_classes(cfg: dict) -> int:
    """Classifier outputs of the pipeline's network (fixed model or search space)."""
    search = cfg["search"]
    return (search["model"] or search["space"])["num_classes"]
