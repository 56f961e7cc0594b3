"""Train an architecture spec on the cached dataset (CPU, seeded, deterministic) and export it to ONNX."""
from __future__ import annotations

import math
import os
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from schemas.arch import ArchSpec

from mcuforge.ml.allocator import keep_freed_memory
from mcuforge.ml.data import Dataset, to_float_nchw
from mcuforge.ml.threads import training_threads
from mcuforge.core.io import atomic_path
from mcuforge.ml.model import build, count_macs_params, fold_batchnorm

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def seed_everything(seed: int, threads: int = 0) -> None:
    keep_freed_memory()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor with NaN to expose reads of uninitialised memory: a debugging aid
    # that costs ~20-25 % of a training step here (aten::fill_ on every allocation) and changes no result.
    torch.utils.deterministic.fill_uninitialized_memory = False
    threads = training_threads(threads)
    if threads:
        torch.set_num_threads(threads)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a shift of up to 2 pixels (zero padding), per sample."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=generator)
    dx = torch.randint(0, 5, (n,), generator=generator)
    h, w = x.shape[2], x.shape[3]
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, x.shape[1], h, w + 4)
    shifted = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, x.shape[1], h, w)
    return shifted.gather(3, cols)


def _optimizer(net: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    decay = [p for name, p in net.named_parameters() if p.ndim > 1]
    no_decay = [p for name, p in net.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=0.9, nesterov=True)
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=cfg["lr"])
    return torch.optim.AdamW(groups, lr=cfg["lr"])


def evaluate(net: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch):
            logits = net(torch.from_numpy(to_float_nchw(x[start:start + batch])))
            correct += int((logits.argmax(1).numpy() == y[start:start + batch]).sum())
    return correct / max(1, len(y))


def train(spec: ArchSpec, data: Dataset, cfg: dict, seed: int, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train from scratch; returns the eval-mode net and metrics (fp32 test accuracy, loss curve, MACs, params)."""
    seed_everything(seed, cfg["threads"])
    # channels_last: oneDNN's depthwise kernels are ~5x faster than NCHW in deterministic mode on the CPU
    net = build(spec).to(memory_format=torch.channels_last)
    optimizer = _optimizer(net, cfg)
    x_all = torch.from_numpy(to_float_nchw(data.x_train))
    y_all = torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(y_all) / cfg["batch_size"])
    total = cfg["epochs"] * steps_per_epoch
    warmup = min(steps_per_epoch, total // 5)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    history = []
    bar = tqdm(total=total, desc="train", unit="step", disable=not progress, mininterval=2.0, file=sys.stderr)
    for epoch in range(cfg["epochs"]):
        net.train()
        order = torch.randperm(len(y_all), generator=generator)
        running, seen = 0.0, 0
        for start in range(0, len(order), cfg["batch_size"]):
            idx = order[start:start + cfg["batch_size"]]
            xb, yb = x_all[idx], y_all[idx]
            if cfg["augment"]:
                xb = _augment(xb, generator)
            loss = loss_fn(net(xb.contiguous(memory_format=torch.channels_last)), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{running / seen:.4f}", refresh=False)
        history.append(round(running / seen, 6))
    bar.close()
    net = net.to(memory_format=torch.contiguous_format).eval()
    macs, params = count_macs_params(spec)
    metrics = {
        "fp32_test_accuracy_torch": evaluate(net, data.x_test, data.y_test),
        "train_loss_per_epoch": history,
        "macs": macs,
        "params": params,
        "train_samples": int(len(y_all)),
        "test_samples": int(len(data.y_test)),
    }
    return net, metrics


def export_onnx(net: nn.Module, spec: ArchSpec, path: Path) -> None:
    """Fold batch norm, export (opset 17, dynamic batch), check with onnx.checker; written atomically."""
    import onnx

    net = fold_batchnorm(net.eval())
    example = torch.zeros(1, spec.input.channels, spec.input.resolution, spec.input.resolution)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (example,), str(tmp), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model, full_check=True)
        model.producer_version = ""  # keep the artifact independent of the torch build string
        onnx.save(model, str(tmp))


def compare_with_torch(net: nn.Module, onnx_path: Path, x: np.ndarray) -> float:
    """Max abs difference between ONNX Runtime's fp32 outputs and torch's on `x` (uint8 NHWC)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = to_float_nchw(x)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(inputs)).numpy()
    got = session.run(None, {INPUT_NAME: inputs})[0]
    return float(np.abs(expected - got).max())
