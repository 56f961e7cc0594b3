"""The anomaly score's C (autoencoder pipelines): constants and `mf_model_anomaly_score` in model.h/model.c, which
runs the autoencoder over every window of a clip's int8 features and accumulates the squared reconstruction error on
an integer grid (docs in mcuforge/ir/anomaly.py).

With the audio front end on the device, `mf_model_anomaly_score_pcm(pcm, ...)` takes the clip's raw int16 PCM: the
integer front end (mf_frontend_run) writes the clip's int8 features into the arena, then mf_model_anomaly_score
slides the windows over them. The features are the network's int8 input byte for byte (the front end's scale and
zero point are imposed on the network's input at quantization), so no input map is needed.

Arena (`PcmPlacement`): the network's tensors keep the planned offsets [0, peak); the front end's scratch starts at
offset 0 (it is only used while the front end runs, before any window); the clip's features follow both, 16-byte
aligned, and live until the last window has been scored. Arena = align16(max(peak, scratch)) + the clip's features.
With MF_LAYER_DUMP the features are dumped once per clip as layer MF_MODEL_NUM_LAYERS (verify compares them with the
Python reference; the QEMU instruction count of that first segment is the front end's)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PcmPlacement:
    """Where the front end's scratch and the clip's features sit in the arena, and the arena's size."""
    scratch_offset: int
    scratch_bytes: int
    features_offset: int
    feature_bytes: int
    network_bytes: int  # the planned peak of the network's tensors
    arena_bytes: int

    def to_json(self) -> dict:
        return {"scratch_offset": self.scratch_offset, "scratch_bytes": self.scratch_bytes,
                "features_offset": self.features_offset, "feature_bytes": self.feature_bytes,
                "network_arena_bytes": self.network_bytes, "arena_bytes": self.arena_bytes}


def place(network_bytes: int, scratch_bytes: int, feature_bytes: int) -> PcmPlacement:
    features = (max(network_bytes, scratch_bytes) + 15) // 16 * 16
    return PcmPlacement(0, scratch_bytes, features, feature_bytes, network_bytes, features + feature_bytes)


def header_lines(anomaly: dict, pcm_samples: int = 0) -> list[str]:
    """The clip score's constants and entry points (anomaly pipelines; docs in mcuforge/ir/anomaly.py)."""
    lines = [
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
    if pcm_samples:
        lines += [
            "",
            "/* The same from the clip's raw sound: pcm: int16 [MF_ANOMALY_PCM_SAMPLES], through the audio front end",
            "   (mf_model_frontend.h) into the arena, then mf_model_anomaly_score on its features. */",
            f"#define MF_ANOMALY_PCM_SAMPLES {pcm_samples}",
            "int mf_model_anomaly_score_pcm(const int16_t *pcm, int64_t *acc, int *anomalous);",
        ]
    return lines


def source_lines(anomaly: dict, placement: PcmPlacement | None = None) -> list[str]:
    grid = anomaly["grid"]
    lines = [
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
    if placement is not None:
        lines += [
            "",
            "/* arena: network tensors [0, " f"{placement.network_bytes}), front-end scratch [{placement.scratch_offset}, "
            f"{placement.scratch_offset + placement.scratch_bytes}) (front end only),",
            f"   the clip's features [{placement.features_offset}, {placement.arena_bytes}) (until the last window) */",
            "int mf_model_anomaly_score_pcm(const int16_t *pcm, int64_t *acc, int *anomalous) {",
            f"    int8_t *features = mf_arena + {placement.features_offset};",
            "    mf_status status = mf_frontend_run(&mf_model_frontend_params, pcm, features, "
            f"mf_arena + {placement.scratch_offset});",
            "    if (status != MF_OK) {",
            "        return status;",
            "    }",
            "    MF_DUMP(MF_MODEL_NUM_LAYERS, features, MF_ANOMALY_CLIP_BYTES);",
            "    return mf_model_anomaly_score(features, acc, anomalous);",
            "}",
        ]
    return lines
