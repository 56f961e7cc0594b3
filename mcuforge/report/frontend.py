"""The review's audio front end section: what it computes, its flash and RAM, its instructions beside the network's
(verify's layer-dump run under QEMU) and its byte-exactness against the Python reference."""
from __future__ import annotations

from mcuforge.report.review import read_artifact


def frontend_facts(cfg: dict, paths, verify: dict | None) -> dict | None:
    if not paths.frontend:  # no front end on the device
        return None
    front = cfg["frontend"]
    card = read_artifact(paths.card) or {}
    figures = read_artifact(paths.frontend_json) or {}
    if cfg.get("autoencoder"):  # the clip's features feed every window; a clip's instructions are the whole
        card = {key: figures.get(key) for key in ("shape", "scale", "zero_point")}
        whole = (verify or {}).get("anomaly_score", {}).get("instructions_per_clip")
    else:
        card = card.get("frontend", {})
        whole = (verify or {}).get("qemu", {}).get("instructions_per_inference")
    checked = (verify or {}).get("frontend", {})
    instructions = checked.get("instructions")
    network = whole - instructions if whole and instructions else None
    return {
        "kind": front["kind"], "shape": card.get("shape"), "scale": card.get("scale"),
        "zero_point": card.get("zero_point"), "sample_rate": front["sample_rate"], "clip_ms": front["clip_ms"],
        "window_ms": front["window_ms"], "hop_ms": front["hop_ms"], "fft_size": front["fft_size"],
        "mel_bins": front["mel_bins"], "num_coeffs": front["num_coeffs"],
        "table_bytes": figures.get("table_bytes"), "input_table_bytes": figures.get("input_table_bytes"),
        "scratch_bytes": figures.get("scratch_bytes"), "scratch_offset": figures.get("scratch_offset"),
        "arena_bytes": figures.get("arena_bytes"), "pcm_bytes": figures.get("pcm_bytes"),
        "instructions": instructions, "network_instructions": network,
        "per": "clip (every window and its score)" if cfg.get("autoencoder") else "inference",
        "features_offset": figures.get("features_offset"), "feature_bytes": figures.get("feature_bytes"),
        "share": instructions / whole if whole and instructions else None,
        "host": checked.get("host_vs_reference"), "qemu": checked.get("qemu_vs_reference"),
    }
