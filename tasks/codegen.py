"""Task `codegen`: C for the engine (mcuforge/codegen/): codegen/model.c, model.h, weights.c, weights.h; with an
audio front end also its tables (mf_model_frontend.c/.h), mf_model_invoke_pcm and codegen/frontend.json; with an
autoencoder the clip's anomaly score (mf_model_anomaly_score, and from raw PCM through the front end
mf_model_anomaly_score_pcm)."""
from __future__ import annotations

from mcuforge.codegen import chain
from mcuforge.codegen.generate import generate, write
from mcuforge.core.io import read_json, write_json
from mcuforge.ml import anomaly_stages
from mcuforge.schedule import rewrite


def run(cfg: dict, paths) -> dict:
    """Stage `codegen`: model.h, model.c, weights.c, weights.h from the int8 model and schedule/plan.json."""
    graph, plan = rewrite.planned(paths.int8, paths.plan)  # kernels run, and layers are numbered, in the plan's order
    if cfg.get("autoencoder"):
        return _anomaly(cfg, paths, graph, plan)
    frontend = _frontend(cfg, paths, graph) if cfg.get("frontend") else None
    write(generate(graph, plan, cfg["name"], frontend), paths.codegen)
    if frontend is not None:
        tables, table = frontend
        write_json(paths.frontend_json, chain.frontend_figures(tables, chain.place(graph, plan, tables), table))
    return {"layers": len(graph.ops)}


def _frontend(cfg: dict, paths, graph):
    """The front end's tables (its int8 quantization from the data card) and ONNX Runtime's input map."""
    from mcuforge.codegen.frontend import tables_for
    from mcuforge.verify.onnx_reference import input_table
    from schemas.frontend import FrontendConfig

    quant = read_json(paths.card)["frontend"]
    tables = tables_for(FrontendConfig(**cfg["frontend"]), quant["scale"], quant["zero_point"])
    return tables, input_table(paths.int8, graph)


def _anomaly(cfg: dict, paths, graph, plan) -> dict:
    """An autoencoder: the clip score from features and, with the front end on the device, from raw PCM."""
    from mcuforge.codegen import anomaly_score
    from mcuforge.codegen.frontend import figures, tables_for
    from schemas.frontend import FrontendConfig

    constants = anomaly_stages.codegen_constants(cfg, paths)
    if cfg["deploy"]["model"]:  # a ready model: its input's quantization is the features'
        src = graph.tensors[graph.input]
        scale, zero_point = float(src.scale), int(src.zp)
    else:  # imposed on the trained network's input at quantization
        card = read_json(paths.card)
        scale, zero_point = card["feature_scale"], card["feature_zero_point"]
    frontend = FrontendConfig(**cfg["frontend"])
    tables = tables_for(frontend, scale, zero_point)
    write(generate(graph, plan, cfg["name"], (tables, None), anomaly=constants), paths.codegen)
    placement = anomaly_score.place(plan.peak_bytes(), tables.scratch_bytes(), constants["clip_bytes"])
    write_json(paths.frontend_json, {**figures(tables), **placement.to_json(), "input_table_bytes": 0,
                                     "shape": [frontend.num_frames, frontend.num_features], "scale": scale,
                                     "zero_point": zero_point, "score": constants})
    return {"layers": len(graph.ops), "arena": placement.arena_bytes}
