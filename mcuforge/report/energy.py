"""Energy per inference and battery life (the lecture's model), and a data-movement estimate per inference.

Energy: E = P_active x t, with t = cycles / clock. Cycles are approximated by the instructions counted under QEMU
(QEMU is not cycle-accurate: a Cortex-M7 dual-issues some instructions, flash wait states and a Cortex-M0+ add
cycles), or, without a QEMU count, by MACs at the lecture's 1 MAC per cycle. Battery: inferences per charge =
V x capacity / E; with the sleep power between inferences and a number of inferences per day, the battery life in days.

Data movement: the lecture's point that moving data costs more than computing on it. Per inference the engine's
loops (no im2col, no register tiling: an upper bound) read one int8 weight from flash and one int8 activation from
SRAM per MAC, read the bias and requantization parameters from flash once per output value, and write every output
activation to SRAM once; ops without weights (add, pools, concat, softmax) read their inputs and write their output.
The pJ-per-access constants are order-of-magnitude figures, not measurements of any board:
"""
from __future__ import annotations

# Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V): 8-bit integer multiply 0.2 pJ, 32-bit integer
# add 0.1 pJ, 32-bit read from an 8 KB SRAM 5 pJ, 32-bit DRAM read 640 pJ. Embedded NOR flash has no figure there;
# we assume a 32-bit flash read costs 5x an SRAM read (sense amplifiers on long bit lines), i.e. 25 pJ.
PJ_PER_MAC = 0.3                 # int8 multiply (0.2) + int32 accumulate (0.1)
PJ_PER_SRAM_BYTE = 5.0 / 4       # 5 pJ per 32-bit SRAM access, per byte
PJ_PER_FLASH_BYTE = 25.0 / 4     # assumption: 5x SRAM
PJ_PER_DRAM_BYTE = 640.0 / 4     # for comparison only: MCUs have no DRAM
ENERGY_CONSTANTS = {
    "mac_pj": PJ_PER_MAC,
    "sram_byte_pj": PJ_PER_SRAM_BYTE,
    "flash_byte_pj": PJ_PER_FLASH_BYTE,
    "dram_byte_pj": PJ_PER_DRAM_BYTE,
}
SECONDS_PER_DAY = 86400
WEIGHTED_KINDS = ("conv", "conv1x1", "depthwise", "fc")


def inference_time_s(clock_mhz: float, instructions: int | None, macs: int) -> tuple[float, str]:
    """Seconds per inference and what they come from."""
    if instructions:
        return instructions / (clock_mhz * 1e6), "instructions counted under QEMU (cycles ~ instructions)"
    return macs / (clock_mhz * 1e6), "MACs at 1 MAC per cycle (no QEMU instruction count)"


def estimate(board: dict, deploy: dict, instructions: int | None, macs: int) -> dict:
    """The lecture's energy model for one board and one deployment."""
    energy = board["energy"]
    seconds, basis = inference_time_s(board["clock_mhz"], instructions, macs)
    active_w = energy["active_mw"] / 1000
    sleep_w = energy["sleep_uw"] / 1e6
    joules = active_w * seconds
    capacity_j = energy["voltage_v"] * deploy["battery_mah"] / 1000 * 3600
    per_day = deploy["inferences_per_day"]
    busy_s = min(per_day * seconds, SECONDS_PER_DAY)
    daily_j = per_day * joules + sleep_w * (SECONDS_PER_DAY - busy_s)
    return {
        "basis": basis,
        "seconds": seconds,
        "active_mw": energy["active_mw"],
        "sleep_uw": energy["sleep_uw"],
        "voltage_v": energy["voltage_v"],
        "joules_per_inference": joules,
        "battery_mah": deploy["battery_mah"],
        "battery_joules": capacity_j,
        "inferences_per_battery": capacity_j / joules if joules else None,
        "inferences_per_day": per_day,
        "duty_cycle": busy_s / SECONDS_PER_DAY,
        "joules_per_day": daily_j,
        "battery_days": capacity_j / daily_j if daily_j else None,
        "saturated": per_day * seconds > SECONDS_PER_DAY,
    }


def layer_traffic(op, tensors: dict, requant: str) -> dict:
    """Bytes this op moves per inference (see the module docstring) and its MACs."""
    out_bytes = tensors[op.output].bytes
    if op.kind == "view":
        return {"macs": 0, "flash_read": 0, "sram_read": 0, "sram_write": 0}
    if op.kind == "mbconv_fused":  # schedule/fuse.py: its three convolutions (the expanded rows go through scratch)
        from mcuforge.schedule.fuse import inner_ops

        parts = [layer_traffic(inner, tensors, requant) for inner in inner_ops(op)]
        return {key: sum(part[key] for part in parts) for key in parts[0]}
    if op.kind == "patch_stage":  # schedule/patch.py: its layers, computed again on the halos (MACs overhead)
        parts = [layer_traffic(inner, tensors, requant) for inner in op.attrs["stage"].ops]
        scale = op.compound.macs / op.compound.layer_macs if op.compound.layer_macs else 1.0
        total = {key: round(sum(part[key] for part in parts) * scale) for key in parts[0]}
        total["macs"] = op.compound.macs
        return total
    if op.kind in WEIGHTED_KINDS:
        macs = op.macs(tensors)
        per_channel_bytes = 4 + (4 if requant == "float" else 8)  # int32 bias + float scale, or multiplier + shift
        return {"macs": macs, "flash_read": macs + out_bytes * per_channel_bytes, "sram_read": macs,
                "sram_write": out_bytes}
    return {"macs": 0, "flash_read": 0, "sram_read": sum(tensors[name].bytes for name in op.inputs),
            "sram_write": out_bytes}


def data_movement(ops, tensors: dict, requant: str) -> dict:
    """Totals per inference and their energy with the constants above (pJ -> uJ)."""
    total = {"macs": 0, "flash_read": 0, "sram_read": 0, "sram_write": 0}
    for op in ops:
        for key, value in layer_traffic(op, tensors, requant).items():
            total[key] += value
    uj = {
        "macs": total["macs"] * PJ_PER_MAC / 1e6,
        "flash_read": total["flash_read"] * PJ_PER_FLASH_BYTE / 1e6,
        "sram_read": total["sram_read"] * PJ_PER_SRAM_BYTE / 1e6,
        "sram_write": total["sram_write"] * PJ_PER_SRAM_BYTE / 1e6,
    }
    moved = uj["flash_read"] + uj["sram_read"] + uj["sram_write"]
    return {"bytes": total, "microjoules": uj, "movement_uj": moved, "arithmetic_uj": uj["macs"],
            "movement_over_arithmetic": moved / uj["macs"] if uj["macs"] else None,
            "constants_pj": ENERGY_CONSTANTS}
