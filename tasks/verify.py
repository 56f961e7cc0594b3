"""Task `verify`: ONNX Runtime (or TFLite Micro) vs the host engine vs the engine under QEMU, byte for byte, per
sample and per layer (mcuforge/verify/): verify/report.json, then a failure naming the first differing layer."""
from __future__ import annotations

import numpy as np

from mcuforge.core.errors import VerificationError
from mcuforge.core.io import write_json
from mcuforge.ml import anomaly_stages
from mcuforge.ml.data import read_for_arch
from mcuforge.verify import anomaly_check
from mcuforge.schedule import rewrite
from mcuforge.toolchain import budget
from mcuforge import toolchain
from mcuforge.verify.check import judge, model_inputs, run_checks


def run(cfg: dict, paths) -> dict:
    """Stage `verify`: writes verify/report.json, then fails (naming the first differing layer) if it must."""
    graph, _ = rewrite.planned(paths.int8, paths.plan)  # layer dumps are numbered in the plan's order
    clips = clip_pcm = pcm = None
    if cfg["deploy"]["model"] and cfg.get("autoencoder"):  # a ready autoencoder: synthetic machine clips
        clips, x, clip_pcm = anomaly_stages.ready_verify_clips(cfg, graph)
        y = None
    elif cfg["deploy"]["model"]:
        x, y = model_inputs(graph, cfg["deploy"]["verify_samples"], cfg["seed"]), None
    elif cfg.get("autoencoder"):  # the network on the windows; the clip scores from raw PCM (anomaly_check)
        clips, x, clip_pcm = anomaly_stages.verify_clips(cfg, paths)
        y = None
    else:
        data = read_for_arch(paths)
        x, y = data.x_test[:cfg["deploy"]["verify_samples"]], data.y_test[:cfg["deploy"]["verify_samples"]]
        pcm = np.load(paths.pcm_test)[:len(x)] if paths.frontend else None  # the engine gets the raw clips
    count = len(x)
    board = cfg["board"]
    machine = board["qemu"]["machine"] if cfg["deploy"]["emulate"] else None
    builds = {"host": paths.executable("host"),
              "host_dump": paths.executable("host", dump=True)}
    if machine:
        builds["board"] = paths.executable(board["name"])
        builds["board_dump"] = paths.executable(board["name"], dump=True)
    work = paths.verify / "work"
    try:
        report, timing = run_checks(graph, paths.int8, x, y,
                            min(cfg["deploy"]["layer_samples"], count), cfg["resolved"]["requant"], builds, machine,
                            work, pcm=pcm)
    except toolchain.ToolchainError as exc:
        raise toolchain.ToolchainError(f"verify: {exc}") from None
    if clips is not None:
        try:
            engine_output = None
            if report["tolerance_lsb"]:  # fixed requantization of an ONNX model: its score from its own output
                engine_output = np.fromfile(work / "host_outputs.bin", dtype=np.int8)
            report["anomaly_score"], frontend = anomaly_check.check(
                graph, paths.int8, clips, x, anomaly_stages.codegen_constants(cfg, paths), builds, machine, work,
                pcm=clip_pcm, layer_samples=cfg["deploy"]["layer_samples"], engine_output=engine_output)
        except toolchain.ToolchainError as exc:
            raise toolchain.ToolchainError(f"verify: {exc}") from None
        if frontend is not None:  # judged like a classifier's front end (check.judge)
            report["frontend"] = frontend
    problems = judge(report) + budget.check_measured(cfg, paths, report)  # SRAM with the measured stack
    if clips is not None:
        problems += anomaly_check.problems(report["anomaly_score"])
    report["passed"] = not problems
    report["problems"] = problems
    write_json(paths.verify_report, report)
    write_json(paths.verify / "timing.json", timing)
    if problems:
        raise VerificationError("verification failed:\n  " + "\n  ".join(problems) + f"\n  (details: {paths.verify_report})")
    summary = {"host_differing_vs_ort": report["host"]["vs_ort"]["differing"]}
    if "qemu" in report:
        summary["qemu_differing_vs_host"] = report["qemu"]["vs_host"]["differing"]
    return summary
