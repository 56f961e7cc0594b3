"""The review's audio front end section: what it computes, its flash and RAM, its instructions beside the network's
(verify's layer-dump run under QEMU) and its byte-exactness against the Python reference."""
from __future__ import annotations

from mcuforge.report.review import read_artifact


def frontend_facts(cfg: dict, paths, verify: dict | None) -> dict | None:
    if not paths.frontend:  # no front end chained on the device (none, or an autoencoder fed features)
        return None
    front = cfg["frontend"]
    card = (read_artifact(paths.card) or {}).get("frontend", {})
    figures = read_artifact(paths.frontend_json) or {}
    checked = (verify or {}).get("frontend", {})
    whole = (verify or {}).get("qemu", {}).get("instructions_per_inference")
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
        "share": instructions / whole if whole and instructions else None,
        "host": checked.get("host_vs_reference"), "qemu": checked.get("qemu_vs_reference"),
    }
