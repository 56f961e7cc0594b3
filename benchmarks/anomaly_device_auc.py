"""Device AUC of a built anomaly pipeline (issue 17): the verified host engine (build_host/mf_runner, whose score
bytes verify found equal to QEMU's) scores every test clip from its int8 features (`mf_runner score`) and every clip
whose raw PCM the data stage kept from that PCM (`mf_runner score_pcm`: the front end on the device). AUC and pAUC
per machine id and per kind (mcuforge.ml.anomaly_metrics, DCASE pAUC at max FPR 0.1), with the int8 figures that
quantize computed from ONNX Runtime's output beside them, the clips whose device accumulator differs from ORT's,
and the threshold's false-alarm and miss rates. Prints Markdown; run by hand on a build:

    .venv/bin/python benchmarks/anomaly_device_auc.py build/anomaly
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from mcuforge import toolchain
from mcuforge.ir import anomaly
from mcuforge.ml import anomaly_data, anomaly_metrics
from mcuforge.verify.frontend_check import write_pcm

RECORD = np.dtype([("acc", "<i8"), ("anomalous", "u1")])


def _scores(runner: Path, command: str, clips: np.ndarray, work: Path) -> np.ndarray:
    inputs = work / f"{command}_in.bin"
    if command == "score_pcm":
        write_pcm(clips, inputs)
    else:
        inputs.write_bytes(np.ascontiguousarray(clips, dtype=np.int8).tobytes())
    toolchain.run_host(runner, inputs, work / f"{command}_out.bin", timeout=3600, command=command)
    return np.fromfile(work / f"{command}_out.bin", dtype=RECORD)


def _row(name: str, figures: dict) -> str:
    return f"| {name} | {figures['auc']:.4f} | {figures['pauc']:.4f} |"


def main(build: Path) -> None:
    data = anomaly_data.read_cache(build / "data")
    quant = json.loads((build / "quantize" / "metrics.json").read_text())
    ort_acc = np.asarray(json.loads((build / "quantize" / "scores.json").read_text())["int8_acc"], dtype=np.int64)
    card = json.loads((build / "data" / "card.json").read_text())
    params = anomaly.Grid(**quant["grid"])
    values, threshold = quant["values_per_clip"], quant["threshold"]
    runner = build / "build_host" / "mf_runner"
    test = {key: getattr(data, key)["test"] for key in ("x", "y", "machine", "kind")}
    with tempfile.TemporaryDirectory() as scratch:
        device = _scores(runner, "score", test["x"], Path(scratch))
        pool = np.asarray(card["pcm_test_clips"], dtype=np.int64)
        from_pcm = _scores(runner, "score_pcm", np.load(build / "data" / "pcm_test.npy"), Path(scratch))
    scores = anomaly.score(device["acc"], values, params)
    result = anomaly_metrics.evaluate(scores, test["y"], test["machine"], test["kind"], data.machine_ids,
                                      tuple(data.kinds), threshold)
    print(f"{build}: {len(scores)} test clips; device accumulators equal to ORT's int8 ones: "
          f"{int((device['acc'] == ort_acc).sum())} of {len(ort_acc)}; decisions acc > {quant['threshold_acc']}: "
          f"{int((device['anomalous'] == (device['acc'] > quant['threshold_acc'])).sum())} of {len(ort_acc)}")
    print(f"from raw PCM (front end on the device): {len(pool)} clips, accumulators equal to the features path's: "
          f"{int((from_pcm['acc'] == device['acc'][pool]).sum())} of {len(pool)}\n")
    print("| test clips | device AUC | device pAUC | int8 (ORT) AUC | int8 pAUC | fp32 AUC | fp32 pAUC |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    rows = [(f"machine id {n}", result["per_machine_id"][n], quant["int8_test"]["per_machine_id"][n],
             quant["fp32_test"]["per_machine_id"][n]) for n in result["per_machine_id"]]
    rows += [(f"kind {k}", result["per_kind"][k], quant["int8_test"]["per_kind"][k], quant["fp32_test"]["per_kind"][k])
             for k in result["per_kind"]]
    rows.append(("mean over ids", result["mean_over_ids"], quant["int8_test"]["mean_over_ids"],
                 quant["fp32_test"]["mean_over_ids"]))
    for name, dev, int8, fp32 in rows:
        print(f"{_row(name, dev)} {int8['auc']:.4f} | {int8['pauc']:.4f} | {fp32['auc']:.4f} | {fp32['pauc']:.4f} |")
    c = result["confusion"]
    print(f"\nthreshold {threshold:.6g} (integer {quant['threshold_acc']}): false alarms {c['fp']} of "
          f"{c['fp'] + c['tn']} ({c['false_alarm_rate']:.1%}), misses {c['fn']} of {c['fn'] + c['tp']} "
          f"({c['miss_rate']:.1%})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/anomaly"))
