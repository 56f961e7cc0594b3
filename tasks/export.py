"""Task `export`: the verified model as a self-contained C library (mcuforge/codegen/export.py):
build/<name>/export/<name>/ (include/, src/, CMakeLists.txt, <name>.mk, README.md) and <name>.zip beside it.

Refuses a build whose verification failed or did not run, unless deploy.export_unverified (`export_unverified=1`).
"""
from __future__ import annotations

import numpy as np

from mcuforge.codegen import export, export_text
from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import read_json, sha256_file, write_json
from mcuforge.core.paths import config_hash
from mcuforge.schedule import rewrite
from mcuforge.toolchain import objects
from mcuforge.toolchain.cmake import ENGINE_DIR
from mcuforge.toolchain.process import ToolchainError
from mcuforge.verify import onnx_reference


def verification(cfg: dict, paths) -> tuple[bool, str]:
    """(passed, a sentence saying what verify found) from verify/report.json."""
    if not paths.verify_report.is_file():
        return False, "verification did not run (no verify/report.json)"
    report = read_json(paths.verify_report)
    if not report.get("passed"):
        problems = "; ".join(report.get("problems", [])) or "see the report"
        return False, f"verification failed ({problems})"
    text = (f"PASSED on {report['samples']} samples against {report['reference']}: host {report['host']['vs_ort']['differing']}"
            " differing bytes")
    if "qemu" in report:
        text += (f", QEMU {report['qemu']['machine']} ({cfg['board']['name']}) {report['qemu']['vs_host']['differing']}"
                 " differing bytes vs the host")
    return True, text


def check_verified(cfg: dict, paths) -> tuple[bool, str]:
    """The verification sentence; McuforgeError when it did not pass and the export is not forced."""
    passed, text = verification(cfg, paths)
    if not passed and not cfg["deploy"].get("export_unverified"):
        raise McuforgeError(
            f"export: refusing to export '{cfg['name']}': {text}.\n  Run `doit verify pipeline={cfg['name']}` until it "
            f"passes, or export anyway by adding export_unverified=1 to the command (`doit export pipeline={cfg['name']} "
            "export_unverified=1`); the export's README then says it is not verified.")
    return passed, text


def u8_table(cfg: dict, paths, graph) -> tuple[int, ...]:
    """ONNX Runtime's int8 input for every uint8 pixel value (onnx_reference.input_table), for ONNX models fed
    images or audio features; none for .tflite models and autoencoders (their input is not x / 255)."""
    if graph.format == "tflite" or cfg.get("autoencoder"):
        return ()
    return tuple(int(v) for v in onnx_reference.input_table(paths.int8, graph))


def run(cfg: dict, paths) -> dict:
    """Stage `export`: the folder, the zip, and export/export.json (files, flash, arena)."""
    passed, verified_text = check_verified(cfg, paths)
    name, board = cfg["name"], cfg["board"]
    graph, plan = rewrite.planned(paths.int8, paths.plan)
    board_lib = paths.build_dir(board["name"]) / "libmf_engine.a"
    try:  # the engine objects that the verified builds linked, host (plain C) and board (DSP)
        chosen, external, defined = objects.select_for_export(
            export.model_sources(paths.codegen), [(paths.build_dir("host") / "libmf_engine.a", "nm"), (board_lib, "arm-none-eabi-nm")])
        flash = objects.map_flash(paths.build_dir(board["name"]) / "mf_runner.map", "libmf_engine.a")
    except ToolchainError as exc:
        raise McuforgeError(f"export: {exc}") from None
    report = read_json(paths.verify_report) if paths.verify_report.is_file() else {}
    stack = report.get("qemu", {}).get("inference_stack_measured_bytes")
    facts = {
        "verified": passed, "verification": verified_text,
        "unverified_reason": None if passed else verified_text,
        "board": board["name"], "flash_bytes": sum(flash.values()), "flash_text": flash[".text"],
        "flash_rodata": flash[".rodata"], "flash_data": flash[".data"],
        "stack": (f"{stack} B measured under QEMU ({report['qemu']['machine']}) for one inference"
                  if stack is not None else "not measured"),
        "flags": " ".join([*objects.ENGINE_FLAGS, *board["compiler"]["flags"],
                           "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections"]),
        "config_sha256": config_hash(cfg),
        "verify_sha256": sha256_file(paths.verify_report) if paths.verify_report.is_file() else "none",
    }
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    labels = tuple(read_json(paths.card).get("classes", ())) if not cfg["deploy"]["model"] else ()
    if labels and len(labels) != dst.bytes:
        labels = ()
    front = read_json(paths.frontend_json) if paths.frontend else {}  # the arena with the front end's RAM
    score = front.get("score", {}) if cfg.get("autoencoder") else {}  # the clip score's constants (codegen)
    spec = export.ExportSpec(name=name, requant=cfg["resolved"]["requant"], input_shape=tuple(src.shape),
                             input_scale=float(src.scale), input_zero_point=int(src.zp), output_shape=tuple(dst.shape),
                             output_scale=float(dst.scale), output_zero_point=int(dst.zp),
                             arena_bytes=front.get("arena_bytes", plan.peak_bytes()), labels=labels,
                             u8_table=u8_table(cfg, paths, graph), facts=facts,
                             pcm_samples=front.get("pcm_bytes", 0) // 2,
                             score_clip_bytes=front.get("feature_bytes", 0) if score else 0,
                             score_threshold=int(score.get("threshold_acc", 0)))
    chosen = export.engine_files(ENGINE_DIR, chosen)
    engine_paths = sorted(export.export_path(ENGINE_DIR, s) for s in chosen)
    sources = sorted([*engine_paths, *(f"src/{s}" for s in export.model_sources(paths.codegen)), f"src/{spec.prefix}api.c"])
    texts = {f"include/{name}.h": export_text.public_header(spec), f"src/{spec.prefix}api.c": export_text.api_source(spec),
             "CMakeLists.txt": export_text.cmake_text(spec, sources), f"{name}.mk": export_text.mk_text(spec, sources),
             "README.md": export_text.readme_text(spec, sources, sorted(external))}
    files = export.layout(spec, ENGINE_DIR, paths.codegen, sorted(chosen), export.renamed(spec, defined), texts)
    folder = paths.export_folder(name)
    export.write_folder(folder, files)
    export.write_zip(folder, paths.export_zip(name))
    summary = {"files": len(files), "sources": sources, "flash_bytes": facts["flash_bytes"],
               "arena_bytes": spec.arena_bytes, "verified": passed, "needs_from_libc": sorted(external),
               "symbols": len(defined)}
    write_json(paths.export_json, summary)
    return {"files": len(files), "flash": facts["flash_bytes"], "arena": spec.arena_bytes, "verified": passed}
