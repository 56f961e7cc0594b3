"""The audio front end chained in front of the network: `mf_model_invoke_pcm(pcm)` runs the front end into the
network's input tensor, maps its int8 output to the network's int8 input, then runs the network.

Memory: the features are written straight into the network's input tensor; the front end's scratch goes into the
arena beside it (after the input tensor, or before it when it fits there), so the arena grows only when the scratch
does not fit around the input. The map (`table[q + 128]`, 256 bytes of flash) is ONNX Runtime's quantization of
`(q + 128) / 255` (mcuforge/ml/audio_features.py); when it is the identity (the network's input scale 1/255 and zero
point -128, as MinMax calibration gives for features spanning the full int8 range) no table is emitted.

With MF_LAYER_DUMP the front end's int8 output is dumped as layer MF_MODEL_NUM_LAYERS (after the network's layers
in file numbering, first in time), so verify checks it byte for byte and counts its instructions apart.

Streaming (compiled only with -DMF_MODEL_STREAM, so other builds keep their RAM): mf_model_stream_reset(history),
mf_model_stream_push(hop) computes one new frame into a rolling feature map kept outside the arena
(mf_frontend_stream_push; its scratch in the arena, free between inferences) and mf_model_stream_invoke() maps the
map into the network's input and runs the network. Static RAM: MF_MODEL_STREAM_RAM_BYTES (2 window_samples + num_frames x num_features + 8 when hop < window)."""
from __future__ import annotations

import numpy as np

from mcuforge.audio.tables import FrontendTables
from mcuforge.codegen.frontend import FrontendPlacement, figures, place, sources
from mcuforge.codegen.writer import CWriter, c_array
from mcuforge.ir.graph import Graph

PREFIX = "mf_model"


def is_identity(table: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(table, dtype=np.int16), np.arange(-128, 128, dtype=np.int16)))


def header_lines(tables: FrontendTables) -> list[str]:
    """model.h additions: the raw input and the PCM entry point."""
    return [
        f"/* Raw input: int16 PCM, {tables.clip_samples} samples, through the audio front end ({PREFIX}_frontend.h). */",
        f"#define MF_MODEL_PCM_SAMPLES {tables.clip_samples}",
        f"#define MF_MODEL_RAW_INPUT_BYTES {2 * tables.clip_samples}",
        "int mf_model_invoke_pcm(const int16_t *pcm);",
        "/* Streaming (build with -DMF_MODEL_STREAM): reset with MF_MODEL_STREAM_KEEP_SAMPLES samples of history",
        " * (or NULL: silence), push MF_MODEL_STREAM_HOP_SAMPLES samples at a time (one new frame each), invoke the",
        " * network on the last MF_MODEL_STREAM_FRAMES frames whenever wanted. */",
        f"#define MF_MODEL_STREAM_HOP_SAMPLES {tables.hop_samples}",
        f"#define MF_MODEL_STREAM_KEEP_SAMPLES {max(tables.window_samples - tables.hop_samples, 0)}",
        f"#define MF_MODEL_STREAM_FRAMES {tables.num_frames}",
        f"#define MF_MODEL_STREAM_RAM_BYTES {stream_ram_bytes(tables)}",
        "#ifdef MF_MODEL_STREAM",
        "int mf_model_stream_reset(const int16_t *history);",
        "int mf_model_stream_push(const int16_t *hop_samples);",
        "int mf_model_stream_invoke(void);",
        "#endif",
    ]


def stream_ram_bytes(tables: FrontendTables) -> int:
    """Static RAM of the streaming entry points: the window buffer (keep + hop int16 >= window) and the rolling int8
    feature map (+ the 8-byte stream state)."""
    keep = max(tables.window_samples - tables.hop_samples, 0)
    return 2 * (keep + tables.hop_samples) + tables.num_frames * tables.num_features + 8


def model_code(graph: Graph, placement: FrontendPlacement, table: np.ndarray, input_address: str) -> str:
    """model.c addition: mf_model_invoke_pcm."""
    w = CWriter()
    w.lines([f'#include "{PREFIX}_frontend.h"', ""])
    identity = is_identity(table)
    if not identity:
        c_array(w, "int8_t", "mf_model_input_table", np.asarray(table, dtype=np.int8), qualifiers="static const")
        w.line()
    with w.block("int mf_model_invoke_pcm(const int16_t *pcm) {"):
        w.lines([f"int8_t *features = {input_address};",
                 f"mf_status status = mf_frontend_run(&{PREFIX}_frontend_params, pcm, features, "
                 f"mf_arena + {placement.scratch_offset});",
                 "if (status != MF_OK) {", "    return status;", "}",
                 "MF_DUMP(MF_MODEL_NUM_LAYERS, features, MF_MODEL_INPUT_BYTES);"])
        if not identity:
            with w.block("for (size_t i = 0; i < (size_t)MF_MODEL_INPUT_BYTES; i++) {"):
                w.line("features[i] = mf_model_input_table[(uint8_t)(features[i] + 128)];")
        w.line("return mf_model_invoke();")
    w.lines(["", "#ifdef MF_MODEL_STREAM",
             "static int16_t mf_model_stream_window[MF_MODEL_STREAM_KEEP_SAMPLES + MF_MODEL_STREAM_HOP_SAMPLES];",
             "static int8_t mf_model_stream_map[MF_MODEL_INPUT_BYTES];",
             "static mf_frontend_stream mf_model_stream_state;", ""])
    with w.block("int mf_model_stream_reset(const int16_t *history) {"):
        with w.block("for (size_t i = 0; i < (size_t)MF_MODEL_INPUT_BYTES; i++) {"):
            w.line("mf_model_stream_map[i] = 0;")
        w.line(f"return mf_frontend_stream_init(&mf_model_stream_state, &{PREFIX}_frontend_params, "
               "mf_model_stream_window, history);")
    w.line()
    with w.block("int mf_model_stream_push(const int16_t *hop_samples) {"):
        w.line(f"return mf_frontend_stream_push(&mf_model_stream_state, &{PREFIX}_frontend_params, hop_samples, "
               f"mf_model_stream_map, mf_arena + {placement.scratch_offset});")
    w.line()
    with w.block("int mf_model_stream_invoke(void) {"):
        w.line(f"int8_t *features = {input_address};")
        with w.block("for (size_t i = 0; i < (size_t)MF_MODEL_INPUT_BYTES; i++) {"):
            w.line("features[i] = mf_model_stream_map[i];" if identity else
                   "features[i] = mf_model_input_table[(uint8_t)(mf_model_stream_map[i] + 128)];")
        w.line("return mf_model_invoke();")
    w.line("#endif")
    return w.text()


def frontend_sources(tables: FrontendTables) -> dict[str, str]:
    return sources(tables, PREFIX)


def frontend_figures(tables: FrontendTables, placement: FrontendPlacement, table: np.ndarray) -> dict:
    facts = figures(tables)
    facts.update(placement.to_json())
    facts["input_table_bytes"] = 0 if is_identity(table) else 256
    return facts
