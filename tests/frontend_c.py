"""Test helper: the C front end (engine_c/src/frontend/mf_frontend.c) as a ctypes shared library, called with a
parameter struct filled from the Python FrontendTables (the same integers the code generator emits)."""
from __future__ import annotations

import ctypes as C
import subprocess
from pathlib import Path

import numpy as np

from mcuforge.audio.tables import FrontendTables

REPO = Path(__file__).resolve().parents[1]
ENGINE_DIR = REPO / "engine_c"
FLAGS = ["-O2", "-std=c99", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
MF_OK = 0
MF_ARG_ERROR = -1


class FrontendParams(C.Structure):
    _fields_ = [(name, C.c_int32) for name in ("kind", "clip_samples", "window_samples", "hop_samples", "num_frames",
                                                "fft_size", "mel_bins", "num_coeffs", "headroom_bits")] + [
        ("window", C.POINTER(C.c_int16)), ("twiddle", C.POINTER(C.c_int32)), ("bitrev", C.POINTER(C.c_uint16)),
        ("mel_start", C.POINTER(C.c_uint16)), ("mel_len", C.POINTER(C.c_uint16)),
        ("mel_weights", C.POINTER(C.c_uint16)), ("log2_table", C.POINTER(C.c_int32)), ("log_offset", C.c_int32),
        ("log_floor", C.c_int32), ("dct", C.POINTER(C.c_int16)), ("out_multiplier", C.c_int32),
        ("out_shift", C.c_int32), ("out_zero_point", C.c_int32)]


def build(out_dir: Path, sanitize: bool = False) -> Path:
    out = Path(out_dir) / ("libmf_frontend_asan.so" if sanitize else "libmf_frontend.so")
    cmd = ["gcc", *FLAGS, *(SANITIZE_FLAGS if sanitize else []), f"-I{ENGINE_DIR / 'include'}",
           str(ENGINE_DIR / "src" / "frontend" / "mf_frontend.c"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


class StreamState(C.Structure):
    _fields_ = [("buffer", C.POINTER(C.c_int16)), ("frames", C.c_int32)]


class Frontend:
    """mf_frontend_run through ctypes."""

    def __init__(self, library: Path):
        self.lib = C.CDLL(str(library))
        self.lib.mf_frontend_run.restype = C.c_int
        self.lib.mf_frontend_get_buffer_size.restype = C.c_size_t

    @staticmethod
    def params(tables: FrontendTables) -> tuple[FrontendParams, list]:
        """The struct and the arrays it points to (keep them alive while the struct is used)."""
        arrays = {name: np.ascontiguousarray(getattr(tables, name)) for name in
                  ("window", "twiddle", "bitrev", "mel_start", "mel_len", "mel_weights", "log2_table", "dct")}
        ctypes_of = {np.int16: C.c_int16, np.int32: C.c_int32, np.uint16: C.c_uint16}

        def pointer(name):
            array = arrays[name]
            if array.size == 0:
                return None
            return array.ctypes.data_as(C.POINTER(ctypes_of[array.dtype.type]))

        params = FrontendParams(
            tables.kind, tables.clip_samples, tables.window_samples, tables.hop_samples, tables.num_frames,
            tables.fft_size, tables.mel_bins, tables.num_coeffs, tables.headroom_bits, pointer("window"),
            pointer("twiddle"), pointer("bitrev"), pointer("mel_start"), pointer("mel_len"), pointer("mel_weights"),
            pointer("log2_table"), tables.log_offset, tables.log_floor, pointer("dct"), tables.multiplier,
            tables.shift, tables.zero_point)
        return params, list(arrays.values())

    def scratch_bytes(self, params: FrontendParams) -> int:
        return int(self.lib.mf_frontend_get_buffer_size(C.byref(params)))

    def call(self, params: FrontendParams, pcm: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> int:
        return int(self.lib.mf_frontend_run(C.byref(params), pcm.ctypes.data_as(C.POINTER(C.c_int16)),
                                            out.ctypes.data_as(C.POINTER(C.c_int8)),
                                            scratch.ctypes.data_as(C.c_void_p)))

    def run(self, tables: FrontendTables, pcm: np.ndarray) -> np.ndarray:
        """int16 [N, clip_samples] -> int8 [N, frames, features]; asserts MF_OK."""
        params, keep = self.params(tables)
        scratch = np.zeros(self.scratch_bytes(params) // 4, dtype=np.int32)
        out = np.zeros((pcm.shape[0], tables.num_frames, tables.num_features), dtype=np.int8)
        for index in range(pcm.shape[0]):
            clip = np.ascontiguousarray(pcm[index], dtype=np.int16)
            status = self.call(params, clip, out[index], scratch)
            assert status == MF_OK, f"mf_frontend_run returned {status}"
        del keep
        return out

    def stream(self, tables: FrontendTables, signal: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
        """mf_frontend_stream_init with history signal[:keep], then one mf_frontend_stream_push per hop of the rest:
        (the new frame of every push [K, features], the rolling map after every push [K, frames, features])."""
        params, arrays = self.params(tables)
        scratch = np.zeros(self.scratch_bytes(params) // 4, dtype=np.int32)
        buffer = np.zeros(tables.window_samples, dtype=np.int16)
        state = StreamState()
        signal = np.ascontiguousarray(signal, dtype=np.int16)
        history = signal[:keep].copy()
        status = self.lib.mf_frontend_stream_init(C.byref(state), C.byref(params),
                                                  buffer.ctypes.data_as(C.POINTER(C.c_int16)),
                                                  history.ctypes.data_as(C.POINTER(C.c_int16)) if keep else None)
        assert status == MF_OK, f"mf_frontend_stream_init returned {status}"
        hop = tables.hop_samples
        pushes = (signal.size - keep) // hop
        features = np.zeros((tables.num_frames, tables.num_features), dtype=np.int8)
        maps = np.zeros((pushes, tables.num_frames, tables.num_features), dtype=np.int8)
        for k in range(pushes):
            chunk = np.ascontiguousarray(signal[keep + k * hop:keep + (k + 1) * hop])
            status = self.lib.mf_frontend_stream_push(C.byref(state), C.byref(params),
                                                      chunk.ctypes.data_as(C.POINTER(C.c_int16)),
                                                      features.ctypes.data_as(C.POINTER(C.c_int8)),
                                                      scratch.ctypes.data_as(C.c_void_p))
            assert status == MF_OK, f"mf_frontend_stream_push returned {status}"
            maps[k] = features
        assert state.frames == pushes
        del arrays
        return maps[:, -1].copy(), maps
