"""Build the C engine into a shared library and call its kernels through ctypes (test helper)."""

from __future__ import annotations

import ctypes as C
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuforge.codegen.layout import pack_depthwise
from mcuforge.ir import quant as engine_quant

REPO = Path(__file__).resolve().parents[2]
ENGINE_DIR = REPO / "engine_c"
MODES = ("float", "fixed")
MODE_MACRO = {"float": "MF_REQUANT_FLOAT", "fixed": "MF_REQUANT_FIXED"}
BASE_FLAGS = ["-O2", "-std=c99", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]
MF_OK = 0
MF_ARG_ERROR = -1
SANITIZE_ENV = "MF_ENGINE_SANITIZE"
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g")


def asan_runtime() -> str:
    """Path of gcc's libasan.so, to LD_PRELOAD into a Python process that loads a sanitized engine."""
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def engine_sources() -> list[Path]:
    return sorted((ENGINE_DIR / "src").rglob("*.c"))


def build_engine(mode: str, out_dir: Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile every engine source into ``out_dir/libmf_<mode>.so`` with host gcc."""
    out = Path(out_dir) / f"libmf_{mode}.so"
    cmd = ["gcc", *BASE_FLAGS, *extra_flags, f"-DMF_REQUANT_MODE={MODE_MACRO[mode]}",
           f"-I{ENGINE_DIR / 'include'}", *map(str, engine_sources()), "-o", str(out)]
    cmd.append("-lm")  # fmaf (float-mode add)
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


class Dims(C.Structure):
    _fields_ = [("h", C.c_int32), ("w", C.c_int32), ("c", C.c_int32)]


class Tile(C.Structure):
    _fields_ = [("h", C.c_int32), ("w", C.c_int32)]


class Padding(C.Structure):
    _fields_ = [("top", C.c_int32), ("left", C.c_int32), ("bottom", C.c_int32), ("right", C.c_int32)]


class ConvParams(C.Structure):
    _fields_ = [("input_zp", C.c_int32), ("output_zp", C.c_int32), ("stride", Tile), ("dilation", Tile),
                ("padding", Padding), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class QuantParams(C.Structure):
    _fields_ = [("scale", C.POINTER(C.c_float)), ("multiplier", C.POINTER(C.c_int32)),
                ("shift", C.POINTER(C.c_int32))]


class Requant(C.Structure):
    _fields_ = [("scale", C.c_float), ("multiplier", C.c_int32), ("shift", C.c_int32)]


class FcParams(C.Structure):
    _fields_ = [("input_zp", C.c_int32), ("output_zp", C.c_int32), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class AddParams(C.Structure):
    _fields_ = [("input1_zp", C.c_int32), ("input2_zp", C.c_int32), ("output_zp", C.c_int32),
                ("input1_scale", C.c_float), ("input2_scale", C.c_float), ("output_scale", C.c_float),
                ("left_shift", C.c_int32), ("input1", Requant), ("input2", Requant), ("output", Requant),
                ("act_min", C.c_int32), ("act_max", C.c_int32)]


class PoolParams(C.Structure):
    _fields_ = [("kernel", Tile), ("stride", Tile), ("padding", Padding), ("count_include_pad", C.c_int32),
                ("input_zp", C.c_int32), ("output_zp", C.c_int32), ("input_scale", C.c_float),
                ("output_scale", C.c_float), ("requant", Requant), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class ConcatInput(C.Structure):
    _fields_ = [("data", C.POINTER(C.c_int8)), ("channels", C.c_int32), ("zp", C.c_int32), ("scale", C.c_float),
                ("requant", Requant)]


class ConcatParams(C.Structure):
    _fields_ = [("output_scale", C.c_float), ("output_zp", C.c_int32)]


class SoftmaxParams(C.Structure):
    _fields_ = [("exp_table", C.POINTER(C.c_float)), ("output_scale_recip", C.c_float), ("output_zp", C.c_int32)]


class SoftmaxTflmParams(C.Structure):
    _fields_ = [("input_multiplier", C.c_int32), ("input_left_shift", C.c_int32), ("diff_min", C.c_int32)]


def _ptr(arr: np.ndarray, ctype):
    return arr.ctypes.data_as(C.POINTER(ctype))


def _requant(real: float) -> Requant:
    mult, shift = engine_quant.quantize_multiplier(float(real))
    return Requant(float(np.float32(real)), mult, shift)


@dataclass
class Conv:
    """Attributes of a convolution, ONNX style (pads = top, left, bottom, right)."""

    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)


class Engine:
    """ctypes front end of one compiled engine library (one requant mode)."""

    def __init__(self, path: Path, mode: str):
        self.mode = mode
        self.lib = C.CDLL(str(path))
        for name in ("mf_conv2d_s8", "mf_conv2d_1x1_s8", "mf_depthwise_conv2d_s8"):
            getattr(self.lib, name).restype = C.c_int
        if mode == "float":
            self.lib.mf_requantize_float.restype = C.c_int32
            self.lib.mf_requantize_float.argtypes = [C.c_int32, C.c_float, C.c_int32, C.c_int32, C.c_int32]
        self.lib.mf_requantize_fixed.restype = C.c_int32
        self.lib.mf_requantize_fixed.argtypes = [C.c_int32] * 6
        self.lib.mf_multiply_by_quantized_multiplier.restype = C.c_int32
        self.lib.mf_multiply_by_quantized_multiplier.argtypes = [C.c_int32] * 3

    # -- quantization parameters --------------------------------------------------------------
    def quant(self, scales: np.ndarray):
        """QuantParams for per-channel float32 scales; returns (struct, arrays kept alive)."""
        scales = np.ascontiguousarray(scales, dtype=np.float32)
        mult, shift = engine_quant.quantize_multipliers(scales)
        keep = (scales, mult, shift)
        return QuantParams(_ptr(scales, C.c_float), _ptr(mult, C.c_int32), _ptr(shift, C.c_int32)), keep

    def requant(self, real: float) -> Requant:
        return _requant(real)

    # -- kernels ------------------------------------------------------------------------------
    def conv2d(self, x_hwc, w_ohwi, bias, scales, x_zp, y_zp, conv: Conv, act=(-128, 127), kind="general"):
        """Runs mf_conv2d_s8 (kind general / 1x1) or mf_depthwise_conv2d_s8 (kind depthwise, w [KH, KW, C])."""
        x = np.ascontiguousarray(x_hwc, dtype=np.int8)
        w = np.ascontiguousarray(w_ohwi, dtype=np.int8)
        h, wd, cin = x.shape
        if kind == "depthwise":
            kh, kw, cout = w.shape
        else:
            cout, kh, kw, _ = w.shape
        pt, pl, pb, pr = conv.pads
        oh = (h + pt + pb - conv.dilation[0] * (kh - 1) - 1) // conv.stride[0] + 1
        ow = (wd + pl + pr - conv.dilation[1] * (kw - 1) - 1) // conv.stride[1] + 1
        out = np.zeros((oh, ow, cout), dtype=np.int8)
        params = ConvParams(x_zp, y_zp, Tile(*conv.stride), Tile(*conv.dilation), Padding(pt, pl, pb, pr), *act)
        quant, keep = self.quant(scales)
        b = None if bias is None else np.ascontiguousarray(bias, dtype=np.int32)
        bptr = None if b is None else _ptr(b, C.c_int32)
        if kind == "depthwise":
            w = pack_depthwise(w)  # the engine's packed int16 layout, as codegen writes it
        fn = {"general": self.lib.mf_conv2d_s8, "1x1": self.lib.mf_conv2d_1x1_s8,
              "depthwise": self.lib.mf_depthwise_conv2d_s8}[kind]
        status = fn(C.byref(params), C.byref(quant), C.byref(Dims(h, wd, cin)), _ptr(x, C.c_int8),
                    C.byref(Dims(kh, kw, cin)), w.ctypes.data_as(C.POINTER(C.c_int8)), bptr, C.byref(Dims(oh, ow, cout)),
                    _ptr(out, C.c_int8))
        del keep
        assert status == MF_OK, f"{fn.__name__} returned {status}"
        return out

    def fully_connected(self, x, w, bias, scales, x_zp, y_zp, act=(-128, 127)):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.int8)
        w = np.ascontiguousarray(w, dtype=np.int8)
        batches, k = x.shape
        n = w.shape[0]
        out = np.zeros((batches, n), dtype=np.int8)
        quant, keep = self.quant(scales)
        b = None if bias is None else np.ascontiguousarray(bias, dtype=np.int32)
        status = self.lib.mf_fully_connected_s8(
            C.byref(FcParams(x_zp, y_zp, *act)), C.byref(quant), C.byref(Dims(batches, 1, k)), _ptr(x, C.c_int8),
            C.byref(Dims(n, 1, k)), _ptr(w, C.c_int8), None if b is None else _ptr(b, C.c_int32),
            C.byref(Dims(batches, 1, n)), _ptr(out, C.c_int8))
        del keep
        assert status == MF_OK
        return out

    def add(self, a, b, sa, zpa, sb, zpb, sy, zpy, act=(-128, 127)):
        a = np.ascontiguousarray(a, dtype=np.int8)
        b = np.ascontiguousarray(b, dtype=np.int8)
        out = np.zeros_like(a)
        fixed = engine_quant.add_fixed_params(sa, sb, sy)
        params = AddParams(zpa, zpb, zpy, float(np.float32(sa)), float(np.float32(sb)), float(np.float32(sy)),
                           fixed["left_shift"], Requant(0.0, *fixed["input1"]), Requant(0.0, *fixed["input2"]),
                           Requant(0.0, *fixed["output"]), *act)
        status = self.lib.mf_add_s8(C.byref(params), a.size, _ptr(a, C.c_int8), _ptr(b, C.c_int8),
                                    _ptr(out, C.c_int8))
        assert status == MF_OK
        return out

    def _pool_params(self, kernel, stride, pads, count_include_pad, xs, xzp, ys, yzp, act, global_pixels=None):
        real = float(np.float32(xs)) / float(np.float32(ys))
        if global_pixels is not None:
            real = real / global_pixels
        pt, pl, pb, pr = pads
        return PoolParams(Tile(*kernel), Tile(*stride), Padding(pt, pl, pb, pr), int(count_include_pad), xzp, yzp,
                          float(np.float32(xs)), float(np.float32(ys)), self.requant(real), *act)

    def avgpool(self, x, kernel, stride, pads, count_include_pad, xs, xzp, ys, yzp, act=(-128, 127)):
        x = np.ascontiguousarray(x, dtype=np.int8)
        h, w, c = x.shape
        oh = (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
        out = np.zeros((oh, ow, c), dtype=np.int8)
        params = self._pool_params(kernel, stride, pads, count_include_pad, xs, xzp, ys, yzp, act)
        status = self.lib.mf_avgpool_s8(C.byref(params), C.byref(Dims(h, w, c)), _ptr(x, C.c_int8),
                                        C.byref(Dims(oh, ow, c)), _ptr(out, C.c_int8))
        assert status == MF_OK
        return out

    def global_avgpool(self, x, xs, xzp, ys, yzp, act=(-128, 127)):
        x = np.ascontiguousarray(x, dtype=np.int8)
        h, w, c = x.shape
        out = np.zeros((c,), dtype=np.int8)
        params = self._pool_params((h, w), (1, 1), (0, 0, 0, 0), 0, xs, xzp, ys, yzp, act, global_pixels=h * w)
        status = self.lib.mf_global_avgpool_s8(C.byref(params), C.byref(Dims(h, w, c)), _ptr(x, C.c_int8),
                                               _ptr(out, C.c_int8))
        assert status == MF_OK
        return out

    def maxpool(self, x, kernel, stride, pads, act=(-128, 127)):
        x = np.ascontiguousarray(x, dtype=np.int8)
        h, w, c = x.shape
        oh = (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
        out = np.zeros((oh, ow, c), dtype=np.int8)
        params = self._pool_params(kernel, stride, pads, 0, 1.0, 0, 1.0, 0, act)
        status = self.lib.mf_maxpool_s8(C.byref(params), C.byref(Dims(h, w, c)), _ptr(x, C.c_int8),
                                        C.byref(Dims(oh, ow, c)), _ptr(out, C.c_int8))
        assert status == MF_OK
        return out

    def concat(self, xs_hwc, scales, zps, ys, yzp):
        arrays = [np.ascontiguousarray(x, dtype=np.int8) for x in xs_hwc]
        h, w = arrays[0].shape[:2]
        inputs = (ConcatInput * len(arrays))()
        for i, (x, s, zp) in enumerate(zip(arrays, scales, zps)):
            real = float(np.float32(s)) / float(np.float32(ys))
            inputs[i] = ConcatInput(_ptr(x, C.c_int8), x.shape[2], zp, float(np.float32(s)), self.requant(real))
        out = np.zeros((h, w, sum(x.shape[2] for x in arrays)), dtype=np.int8)
        params = ConcatParams(float(np.float32(ys)), yzp)
        status = self.lib.mf_concat_s8(C.byref(params), inputs, len(arrays), C.byref(Dims(*out.shape)),
                                       _ptr(out, C.c_int8))
        assert status == MF_OK
        return out

    def softmax(self, x, xs, ys, yzp):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.int8)
        rows, depth = x.shape
        table = np.ascontiguousarray(engine_quant.softmax_exp_table(xs, depth), dtype=np.float32)
        recip = engine_quant.softmax_output_scale_recip(ys)
        out = np.zeros_like(x)
        params = SoftmaxParams(_ptr(table, C.c_float), float(recip), yzp)
        status = self.lib.mf_softmax_s8(C.byref(params), C.byref(Dims(rows, 1, depth)), _ptr(x, C.c_int8),
                                        _ptr(out, C.c_int8))
        assert status == MF_OK
        return out

    def argmax(self, x) -> int:
        x = np.ascontiguousarray(x, dtype=np.int8)
        index = C.c_int32(-1)
        status = self.lib.mf_argmax_s8(_ptr(x, C.c_int8), x.size, C.byref(index))
        assert status == MF_OK
        return index.value


class BothPaths:
    """Two builds of one requant mode side by side: the plain C path and the DSP (SIMD32) path with its portable
    intrinsics (MF_DSP_EMULATE). Every kernel call runs on both, on copies of the arrays, and the two results must
    be byte-identical; the plain result is returned (and compared with ONNX Runtime by the tests)."""

    def __init__(self, plain: Engine, dsp: Engine):
        self.plain = plain
        self.dsp = dsp
        self.mode = plain.mode
        self.lib = plain.lib

    HELPERS = ("quant", "requant")  # parameter builders, not kernel calls

    def __getattr__(self, name):
        plain_fn = getattr(self.plain, name)
        if not callable(plain_fn) or name in self.HELPERS:
            return plain_fn
        dsp_fn = getattr(self.dsp, name)

        def both(*args, **kwargs):
            def copies(values):
                return [v.copy() if isinstance(v, np.ndarray) else v for v in values]

            dsp_result = dsp_fn(*copies(args), **dict(zip(kwargs, copies(kwargs.values()))))
            plain_result = plain_fn(*args, **kwargs)
            if isinstance(plain_result, np.ndarray):
                assert np.array_equal(plain_result, dsp_result), (
                    f"{name} ({self.mode}): the DSP path (MF_DSP_EMULATE) differs from the plain path in "
                    f"{int(np.count_nonzero(plain_result != dsp_result))} of {plain_result.size} values")
            else:
                assert plain_result == dsp_result, f"{name} ({self.mode}): DSP path {dsp_result} != plain {plain_result}"
            return plain_result

        return both


def build_both_paths(out_dir: Path, extra_flags: tuple[str, ...] = ()) -> dict[str, BothPaths]:
    """{"float": BothPaths, "fixed": BothPaths}: each mode built twice (plain, and -DMF_DSP_EMULATE)."""
    engines = {}
    for variant in ("plain", "dsp"):
        (Path(out_dir) / variant).mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        plain = Engine(build_engine(mode, Path(out_dir) / "plain", extra_flags), mode)
        dsp = Engine(build_engine(mode, Path(out_dir) / "dsp", (*extra_flags, "-DMF_DSP_EMULATE")), mode)
        engines[mode] = BothPaths(plain, dsp)
    return engines
