"""The anomaly score's C (autoencoder pipelines): constants and `mf_model_anomaly_score` in model.h/model.c, which
runs the autoencoder over every window of a clip's int8 features and accumulates the squared reconstruction error on
an integer grid (docs in mcuforge/ir/anomaly.py)."""
from __future__ import annotations


def header_lines(anomaly: dict) -> list[str]:
    """The clip score's constants and entry point (anomaly pipelines; docs in mcuforge/ir/anomaly.py)."""
    return [
        "",
        "/* Anomaly score of a clip: the autoencoder runs on every window of MF_ANOMALY_FRAMES_PER_VECTOR consecutive",
        "   frames (MF_ANOMALY_VECTORS of them, MF_ANOMALY_FRAME_BYTES apart) of the clip's int8 features; the sum of",
        "   squared reconstruction errors on the integer grid (mf_anomaly_accumulate_s8) is compared with the threshold",
        f"   (real score = acc x {anomaly['grid']['grid']!r}^2 / {anomaly['values_per_clip']}). */",
        "#define MF_MODEL_ANOMALY 1",
        f"#define MF_ANOMALY_CLIP_BYTES {anomaly['clip_bytes']}",
        f"#define MF_ANOMALY_FRAME_BYTES {anomaly['frame_bytes']}",
        f"#define MF_ANOMALY_FRAMES_PER_VECTOR {anomaly['frames']}",
        f"#define MF_ANOMALY_VECTORS {anomaly['vectors_per_clip']}",
        f"#define MF_ANOMALY_THRESHOLD INT64_C({anomaly['threshold_acc']})",
        "",
        "/* clip: int8 [MF_ANOMALY_CLIP_BYTES] features; *acc: the score's accumulator; *anomalous: acc > threshold. */",
        "int mf_model_anomaly_score(const int8_t *clip, int64_t *acc, int *anomalous);",
    ]


def source_lines(anomaly: dict) -> list[str]:
    grid = anomaly["grid"]
    return [
        "",
        "int mf_model_anomaly_score(const int8_t *clip, int64_t *acc, int *anomalous) {",
        f"    static const mf_anomaly_params params = {{{grid['input_zp']}, {grid['output_zp']}, "
        f"{grid['input_multiplier']}, {grid['output_multiplier']}}};",
        "    int32_t vector;",
        "    int status;",
        "    *acc = 0;",
        "    for (vector = 0; vector < MF_ANOMALY_VECTORS; ++vector) {",
        "        const int8_t *window = clip + (size_t)vector * MF_ANOMALY_FRAME_BYTES;",
        "        memcpy(mf_model_input(), window, MF_MODEL_INPUT_BYTES);",
        "        status = mf_model_invoke();",
        "        if (status != MF_OK) {",
        "            return status;",
        "        }",
        "        status = mf_anomaly_accumulate_s8(&params, MF_MODEL_INPUT_BYTES, window, mf_model_output(), acc);",
        "        if (status != MF_OK) {",
        "            return status;",
        "        }",
        "    }",
        "    *anomalous = *acc > MF_ANOMALY_THRESHOLD;",
        "    return MF_OK;",
        "}",
    ]
