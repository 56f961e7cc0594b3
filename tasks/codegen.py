"""Task `codegen`: C for the engine (mcuforge/codegen/): codegen/model.c, model.h, weights.c, weights.h; with an
audio front end also its tables (mf_model_frontend.c/.h), mf_model_invoke_pcm and codegen/frontend.json; with an
autoencoder the clip's anomaly score (mf_model_anomaly_score)."""
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
        write(generate(graph, plan, cfg["name"], anomaly=anomaly_stages.codegen_constants(cfg, paths)), paths.codegen)
        return {"layers": len(graph.ops)}
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
