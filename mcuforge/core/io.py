"""Artifact writing: every file appears whole or not at all (temp name in the same folder, then rename)."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from mcuforge.core.errors import McuforgeError

_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(McuforgeError):
    """No space (or quota) left to write an artifact; names the file and the free space."""


def free_bytes(path: Path) -> int | None:
    """Free bytes on the filesystem holding `path` (its nearest existing parent); None when unknown."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _is_full(path: Path, error: OSError) -> bool:
    """ENOSPC/EDQUOT, or a short write without an errno (numpy's tofile: "N requested and M written") on a
    filesystem with under 1 MiB left."""
    if error.errno in _FULL:
        return True
    free = free_bytes(path)
    return error.errno is None and free is not None and free < 2**20


def disk_full(path: Path, error: OSError) -> DiskFullError:
    free = free_bytes(path)
    left = f"{free:,} bytes free" if free is not None else "free space unknown"
    return DiskFullError(f"no space left on the device writing {path} ({error.strerror or error}; {left}): "
                         "free some space or choose another build= directory, then run again")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds, delete it otherwise."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        if error.errno in _FULL:
            raise disk_full(path, error) from None
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; artifacts are ordinary readable files
        os.replace(tmp_path, path)
    except OSError as error:
        if _is_full(path, error):  # a full disk (or quota): say so, not an OSError traceback
            tmp_path.unlink(missing_ok=True)  # first, so that the message gives the space really free
            raise disk_full(path, error) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def dumps_json(obj) -> str:
    """Canonical JSON: sorted keys, two-space indent, trailing newline (so artifacts diff and hash stably)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: Path, obj) -> None:
    write_text(path, dumps_json(obj))


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_npy(path: Path, array: np.ndarray) -> None:
    """np.save (deterministic bytes, unlike np.savez whose zip entries carry the current time)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Arrays -> an uncompressed .npz (np.load reads it) whose bytes depend only on the arrays: entries in sorted
    order with a fixed timestamp (np.savez stamps the current time)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in sorted(arrays):
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def flatten(value, prefix: str = "") -> dict[str, object]:
    """Nested dicts and lists -> {dotted.path: leaf}."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}
