"""mcuforge pipeline: `doit run pipeline=<yaml> [field.path=value ...]`.

Variables: `pipeline=` (a YAML path, or a name under pipelines/; default fashion), `build=` (build root; default
build/<name>), and any config field as a dotted path (`train.epochs=3`) or a short alias (`board=`, `seed=`, `name=`).
This file only wires tasks; each stage is a thin tasks/<stage>.py over the mcuforge/ library (docs/architecture.md).
"""
import atexit
import sys
import traceback
from pathlib import Path

from mcuforge.ml.threads import configure_environment

configure_environment()  # before torch starts its OpenMP threads: passive waiting (a loaded machine, issue 18)

from doit import doit_cmd  # noqa: E402
from doit.tools import config_changed

from tasks import build as build_stage
from tasks import config as config_stage
from tasks import data as data_stage
from tasks import manifest as manifest_stage
from tasks import review as review_stage
from tasks import search as search_stage
from tasks.doit_state import check_state_db, committing_reporter, lock_build, release_build, remove_stray_temporaries
from tasks.doit_state import checking_targets
from tasks.doit_support import EXIT_INTERNAL, McuforgeError, action, keep_freed_memory

ROOT = Path(__file__).resolve().parent


def code_files(*names: str) -> list[Path]:
    """The Python sources of these packages (folders) or modules, sorted: a stage's `file_dep` on the code that
    decides its output, so a build directory made by another mcuforge version reruns that stage."""
    found = []
    for name in names:
        path = ROOT / name
        found += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return sorted(found)
keep_freed_memory()  # before torch starts threads: training runs in this process (mcuforge/ml/allocator.py)


def _load():
    """The resolved config and its build root, checked before any work; a bad input ends the process here with the
    exit code of its kind (README), anything unexpected with EXIT_INTERNAL and its traceback."""
    variables = dict(getattr(doit_cmd, "_CMDLINE_VARS", None) or {})
    try:
        pipeline, build, overrides = config_stage.split_vars(variables)
        cfg = config_stage.resolve(pipeline, overrides)
        paths = config_stage.paths(cfg, build or ROOT / "build" / cfg["name"])
        config_stage.prepare_build(paths.root, create="check_manifest" not in sys.argv[1:])
    except McuforgeError as exc:
        print(f"mcuforge: {exc.kind}\n{exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception:  # a bug: show it, with the internal-error exit code
        traceback.print_exc()
        print("mcuforge: internal error while loading the pipeline (a bug: please report it with this traceback)",
              file=sys.stderr)
        sys.exit(EXIT_INTERNAL)
    return cfg, paths


CFG, PATHS = _load()
if PATHS.root.is_dir():  # (prepare_build made it, except for check_manifest, which never creates a build)
    if lock_build(PATHS.root, sys.argv):  # a second command on this build directory is refused (tasks/doit_state.py)
        atexit.register(release_build, PATHS.root)
        remove_stray_temporaries(PATHS.root)
    check_state_db(PATHS.doit_db)  # a damaged .doit.db: moved aside with a note, doit starts a new one
DATA_FILES = [PATHS.data_file(key) for key in data_stage.SPLITS]
TRAINED = not CFG["deploy"]["model"]  # deploy.model: the given int8 model replaces data/search/train/quantize
ANOMALY = bool(CFG.get("autoencoder"))  # an autoencoder over audio features: its own data/search/train/quantize

DOIT_CONFIG = {
    "default_tasks": ["manifest", "review"],
    # `doit run` ends with the key figures; each finished task's state is committed at once (survives a kill)
    "reporter": committing_reporter(review_stage.summary_reporter(CFG, PATHS)),
    "dep_file": str(PATHS.doit_db),
    "backend": "sqlite3",
    "verbosity": 2,
    "action_string_formatting": "new",
}


def _section(*names):
    return {name: CFG[name] for name in names}


def task_config():
    """Validate the pipeline YAML and its board; write build/<name>/config.resolved.json."""
    return {
        "actions": [action("tasks.doit_support:write_config", CFG, PATHS)],
        "file_dep": [config_stage.absolute(CFG["resolved"]["pipeline_file"]),
                     config_stage.absolute(CFG["resolved"]["board_file"])],
        "targets": [PATHS.config],
        "uptodate": [config_changed(CFG)],
        "clean": True,
    }


def task_data():
    """Load the dataset (fashion_mnist, sklearn_digits, image_folder), cache it as .npy with a dataset card."""
    file_dep = []
    if CFG["dataset"]["kind"] == "fashion_mnist":
        folder = config_stage.absolute(CFG["resolved"]["dataset_path"])
        file_dep = [folder / name for name in data_stage.FASHION_FILES.values()]
    audio = CFG["dataset"]["kind"] in data_stage.AUDIO_KINDS  # clips through the front end: its section matters
    return {
        "actions": [action("tasks.data:run", CFG, PATHS)],
        "file_dep": file_dep,
        "targets": DATA_FILES + [PATHS.card] + ([PATHS.pcm_test] if PATHS.frontend else []),
        "uptodate": [config_changed(_section("dataset", "seed", *(["frontend"] if ANOMALY or audio else []))
                                    | ({} if ANOMALY else {"classes": data_stage.num_classes(CFG)}))],
        "clean": True,
    }


def task_search():
    """Write search/arch.json: the fixed `search.model`, or the TinyNAS search's winner (+ logs, CDF and Pareto plots)."""
    if ANOMALY:
        return {
            "actions": [action("tasks.search:run", CFG, PATHS)],
            "file_dep": DATA_FILES,
            "targets": [PATHS.arch],
            "uptodate": [config_changed(_section("autoencoder", "train", "seed", "resolved"))],
            "clean": True,
        }
    searching = CFG["search"]["model"] is None
    return {
        "actions": [action("tasks.search:run", CFG, PATHS)],
        "file_dep": (DATA_FILES + [search_stage.LATENCY_MODEL]) if searching else [],  # the latency cost model
        "targets": [PATHS.arch] + (search_stage.search_outputs(PATHS) if searching else []),
        "uptodate": [config_changed(_section("search", "seed")
                                    | {"budgets": search_stage.budgets(CFG), "channels": CFG["dataset"]["channels"]})],
        "clean": True,
    }


def task_train():
    """Train the architecture (CPU, deterministic), export train/model_fp32.onnx, write train/metrics.json."""
    return {
        "actions": [action("tasks.train:run", CFG, PATHS)],
        "file_dep": [PATHS.arch] + DATA_FILES,
        "targets": [PATHS.fp32, PATHS.train_metrics],
        "uptodate": [config_changed(_section("train", "seed"))],
        "clean": True,
    }


def task_quantize():
    """Quantize to int8 with ONNX Runtime (static; QOperator or QDQ): quantize/model_int8.onnx, fp32 vs int8 accuracy."""
    quantize_cfg = {k: v for k, v in CFG["quantize"].items() if k != "requant"}  # requant only affects codegen
    return {
        "actions": [action("tasks.quantize:run", CFG, PATHS)],
        "file_dep": [PATHS.fp32] + DATA_FILES + code_files("mcuforge/ml/quantize.py"),
        "targets": [PATHS.int8, PATHS.quant_metrics] + ([PATHS.quant_metrics.parent / "scores.json"] if ANOMALY else []),
        "uptodate": [config_changed({"quantize": quantize_cfg, "seed": CFG["seed"],
                                     "threshold_fpr": (CFG.get("autoencoder") or {}).get("threshold_fpr")})],
        "clean": True,
    }


if not TRAINED:
    del task_data, task_search, task_train, task_quantize


def task_schedule():
    """Plan the activation arena (tensor lifetimes, offsets, lower bound): schedule/plan.json, plan.txt, memory.png."""
    return {
        "actions": [action("tasks.schedule:run", CFG, PATHS)],
        "file_dep": [PATHS.int8] + code_files("mcuforge/schedule", "mcuforge/ir", "mcuforge/frontends"),  # the planner
        "targets": [PATHS.plan, PATHS.plan_txt, PATHS.memory_png],
        "uptodate": [config_changed({"schedule": CFG["schedule"],
                                     "budget": CFG["resolved"]["sram_budget_bytes"]})],
        "clean": True,
    }


# the code generator itself (and the front end's table builder): the C it writes must match engine_c/, so a build
# directory made by an older mcuforge is regenerated, not compiled against the new engine (e.g. the packed depthwise
# filters of session 7)
GENERATOR_FILES = code_files("mcuforge/codegen", "mcuforge/audio/tables.py", "mcuforge/audio/fft.py",
                             "mcuforge/audio/features.py")


def task_codegen():
    """Generate C for the engine: codegen/model.c, model.h, weights.c, weights.h (kernels in plan order)."""
    return {
        "actions": [action("tasks.codegen:run", CFG, PATHS)],
        "file_dep": [PATHS.int8, PATHS.plan] + ([PATHS.quant_metrics, PATHS.card] if ANOMALY and TRAINED else [])
                    + ([PATHS.card] if PATHS.frontend and TRAINED else []) + GENERATOR_FILES,
        "targets": PATHS.codegen_files + ([PATHS.frontend_json] if PATHS.frontend else []),
        "uptodate": [config_changed({"name": CFG["name"], "frontend": CFG.get("frontend"),
                                     **({"autoencoder": CFG["autoencoder"]} if ANOMALY else {})})],
        "clean": True,
    }


ENGINE_FILES = build_stage.engine_files(ROOT)
REQUANT = {"requant": CFG["resolved"]["requant"]}


def task_build_host():
    """Build the engine + model for the host (gcc): the runner and its layer-dump variant."""
    return {
        "actions": [action("tasks.build:run_host", CFG, PATHS)],
        "file_dep": PATHS.codegen_files + ENGINE_FILES,
        "targets": [PATHS.executable("host"), PATHS.executable("host", dump=True)],
        "uptodate": [config_changed(REQUANT)],
        "clean": True,
    }


def _task_build_board():
    board = CFG["board"]["name"]
    return {
        "actions": [action("tasks.build:run_board", CFG, PATHS)],
        "file_dep": PATHS.codegen_files + ENGINE_FILES,
        "targets": [PATHS.executable(board), PATHS.executable(board, dump=True), PATHS.size_json,
                    PATHS.size_json.parent / "budget.json"],
        "uptodate": [config_changed(REQUANT | {"board": CFG["board"]}),
                     lambda: build_stage.sizes_are_for(PATHS, board)],
        "clean": True,
    }


_task_build_board.__doc__ = (f"Cross-compile for {CFG['board']['name']} ({CFG['board']['core']}, arm-none-eabi-gcc): "
                             "ELF, layer-dump ELF, size.json, budget.json (refuses a model over the SRAM or flash "
                             "budget).")
globals()[f"task_build_{CFG['board']['name'].replace('-', '_')}"] = _task_build_board


def task_verify():
    """Compare ONNX Runtime, the host engine and QEMU byte for byte (per sample and per layer): verify/report.json."""
    board = CFG["board"]["name"]
    return {
        "actions": [action("tasks.verify:run", CFG, PATHS)],
        "file_dep": [PATHS.int8, PATHS.plan, *([PATHS.data_file("x_test"), PATHS.data_file("y_test")] if TRAINED else []),
                     *([PATHS.pcm_test] if PATHS.frontend and TRAINED else []),
                     PATHS.executable("host"), PATHS.executable("host", dump=True),
                     PATHS.executable(board), PATHS.executable(board, dump=True)],
        "targets": [PATHS.verify_report],
        "uptodate": [config_changed({"deploy": {k: v for k, v in CFG["deploy"].items() if k != "export_unverified"},
                                     "requant": CFG["resolved"]["requant"],
                                     "machine": CFG["board"]["qemu"]["machine"]})],
        "clean": True,
    }


def task_export():
    """Export the verified model as a C library: build/<name>/export/<name>/ (header, sources, CMakeLists.txt, .mk,
    README.md) and <name>.zip; refuses an unverified build unless export_unverified=1."""
    board = CFG["board"]["name"]
    forced = CFG["deploy"]["export_unverified"]
    return {
        "actions": [action("tasks.export:run", CFG, PATHS)],
        "file_dep": [PATHS.int8, PATHS.plan, *PATHS.codegen_files, *ENGINE_FILES, PATHS.executable("host"),
                     PATHS.executable(board),
                     *([PATHS.card] if TRAINED else []), *([] if forced else [PATHS.verify_report])],
        "targets": [PATHS.export_zip(CFG["name"]), PATHS.export_json],
        "uptodate": [config_changed({"name": CFG["name"], "requant": CFG["resolved"]["requant"],
                                     "board": CFG["board"], "forced": forced})],
        "clean": True,
    }


def task_manifest():
    """Write manifest.json: sha256 of every artifact, tool versions, resolved-config hash."""
    return {
        "actions": [action("tasks.manifest:run", CFG, PATHS)],
        "file_dep": manifest_stage.artifacts(CFG, PATHS) + manifest_stage.inputs(CFG),
        "targets": [PATHS.manifest],
        "uptodate": [config_changed(manifest_stage.versions())],
        "clean": True,
    }


def task_check_manifest():
    """Re-hash the artifacts of an existing build and name any that changed since manifest.json was written."""
    return {
        "actions": [action("tasks.manifest:check_action", PATHS)],
        "uptodate": [False],  # no file_dep on manifest.json: doit would first re-run `manifest` and re-hash
        "verbosity": 2,
    }


def task_review():
    """Review the build: budgets, per-layer table, plots, size breakdown, accuracy, energy -> review/report.md + .html.

    Reads the stages that have run and shows the others as not run (it never runs them); re-runs when their files change.
    """
    return {
        "actions": [action("tasks.review:run", CFG, PATHS)],
        "targets": [review_stage.ReviewPaths(PATHS).md, review_stage.ReviewPaths(PATHS).html],
        "uptodate": [review_stage.uptodate(CFG, PATHS)],
        "verbosity": 2,
        "clean": True,
    }


def task_diff():
    """`doit diff a=<yaml> b=<yaml> [build_a=<dir> build_b=<dir>]`: config differences and what they change (budgets,
    memory, flash, MACs, accuracy) as Markdown; fails when b breaks a budget that a met."""
    variables = dict(getattr(doit_cmd, "_CMDLINE_VARS", None) or {})
    return {
        "actions": [action("tasks.diff:run", variables.get("a"), variables.get("b"), variables.get("build_a"),
                           variables.get("build_b"))],
        "uptodate": [False],  # a command: compares two builds each time it is asked
        "verbosity": 2,
    }


# Every task with targets also reruns when one of them no longer has the sha256 recorded after its last run: a
# hand-edited or corrupted artifact is rebuilt, never used (tasks/doit_state.py).
for _name, _creator in list(globals().items()):
    if _name.startswith("task_") and callable(_creator):
        globals()[_name] = checking_targets(_creator)
