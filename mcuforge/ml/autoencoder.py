"""The `autoencoder:` model family: build (torch), cost (engine graph, arena planner), train (MSE on normal clips
only), export (ONNX, BatchNorm folded) and score (mean squared reconstruction error over a clip's vectors).

dense (MLPerf Tiny's anomaly model): frames x features -> depth x [Linear, BatchNorm, ReLU] of `width` -> Linear,
BatchNorm, ReLU to `bottleneck` -> depth x [Linear, BatchNorm, ReLU] of `width` -> Linear to frames x features.
conv: input [1, frames, features] -> two 3x3 stride-2 [Conv, BatchNorm, ReLU] of width / 4 channels -> flatten ->
Linear, BatchNorm, ReLU to `bottleneck` -> Linear, BatchNorm, ReLU to `width` -> Linear to frames x features.
"""
from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mcuforge.core.io import atomic_path
from mcuforge.ir.graph import Graph, Op, Tensor
from mcuforge.ml import archgraph
from mcuforge.ml.train import INPUT_NAME, OPSET, seed_everything
from mcuforge.schedule import planner

OUTPUT_NAME = "reconstruction"


def _dense(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU())


class Autoencoder(nn.Module):
    def __init__(self, ae: dict, features: int):
        super().__init__()
        self.kind, self.frames, self.features = ae["kind"], ae["frames"], features
        dim, width = ae["frames"] * features, ae["width"]
        if ae["kind"] == "dense":
            encoder = [_dense(dim if i == 0 else width, width) for i in range(ae["depth"])]
            encoder.append(_dense(width, ae["bottleneck"]))
            decoder = [_dense(ae["bottleneck"] if i == 0 else width, width) for i in range(ae["depth"])]
        else:
            channels = max(1, width // 4)
            h, w = ae["frames"], features
            for _ in range(2):
                h, w = (h + 1) // 2, (w + 1) // 2
            encoder = [nn.Sequential(nn.Conv2d(1, channels, 3, 2, 1), nn.BatchNorm2d(channels), nn.ReLU()),
                       nn.Sequential(nn.Conv2d(channels, channels, 3, 2, 1), nn.BatchNorm2d(channels), nn.ReLU()),
                       nn.Flatten(), _dense(channels * h * w, ae["bottleneck"])]
            decoder = [_dense(ae["bottleneck"], width)]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder, nn.Linear(width, dim))
        # feature standardisation (set from the training data, folded into the first and last layers at export):
        # the dense input is (x - mean) / std per value; the output layer predicts standardised values
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.folded = False

    def standardise_on(self, x: np.ndarray) -> None:
        """Per-value mean and std; the std is floored at 0.3 x the median std, so a value that barely moves
        (a mel bin at the front end's log floor) does not get a huge weight once folded into the first layer, which
        would take the whole int8 range of its per-channel weight scale and zero the rest."""
        std = x.std(axis=0)
        self.mean.copy_(torch.from_numpy(x.mean(axis=0)))
        self.std.copy_(torch.from_numpy(np.maximum(std, max(1e-3, 0.3 * float(np.median(std)))).astype(np.float32)))

    def input_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.frames * self.features) if self.kind == "dense" else (batch, 1, self.frames, self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            return self.decoder(self.encoder(x))
        if self.kind == "dense":
            x = (x - self.mean) / self.std
        return self.decoder(self.encoder(x)) * self.std + self.mean


def fold(net: Autoencoder) -> Autoencoder:
    """Fold the standardisation into the first (dense) and last Linear and every BatchNorm into the Linear/Conv
    before it (eval mode), in place: the exported model maps raw features to raw features with plain layers."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    if net.folded:
        return net
    with torch.no_grad():
        if net.kind == "dense":
            first = net.encoder[0][0]
            first.bias -= first.weight @ (net.mean / net.std)
            first.weight /= net.std[None, :]
        last = net.decoder[-1]
        last.weight *= net.std[:, None]
        last.bias.copy_(last.bias * net.std + net.mean)
    net.folded = True
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[1], nn.modules.batchnorm._BatchNorm):
            fuse = fuse_linear_bn_eval if isinstance(module[0], nn.Linear) else fuse_conv_bn_eval
            module[0] = fuse(module[0], module[1])
            module[1] = nn.Identity()
    return net


# ---- cost ---------------------------------------------------------------------------------------------------------
def engine_graph(ae: dict, features: int) -> tuple[Graph, int, int]:
    """The engine's op sequence for the autoencoder (shapes only): (graph, MACs, bytes of constants in flash)."""
    net = Autoencoder(ae, features)
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []
    macs = const = 0

    def tensor(shape: tuple[int, ...]) -> str:
        name = f"t{len(tensors)}"
        tensors[name] = Tensor(name, shape, 1.0, 0)
        return name

    shape = net.input_shape(1)[1:]
    x = first = tensor(shape if len(shape) == 1 else (shape[1], shape[2], shape[0]))
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            h, w, cin = tensors[x].shape
            out = tensor(((h + 1) // 2, (w + 1) // 2, module.out_channels))
            per_out = 9 * cin
            macs += math.prod(tensors[out].shape) * per_out
            const += module.out_channels * (per_out + 8)
            attrs = {"strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [1, 1], "clamp": (-128, 127)}
            ops.append(Op("conv", f"op{len(ops)}", "conv", [x], out, attrs,
                          {"weight": np.empty((module.out_channels, 3, 3, cin), np.int8)}))
            x = out
        elif isinstance(module, nn.Flatten):
            out = tensor((math.prod(tensors[x].shape),))
            ops.append(Op("view", f"op{len(ops)}", "view", [x], out))
            x = out
        elif isinstance(module, nn.Linear):
            out = tensor((module.out_features,))
            macs += module.in_features * module.out_features
            const += module.out_features * (module.in_features + 8)
            ops.append(Op("fc", f"op{len(ops)}", "fc", [x], out, {},
                          {"weight": np.empty((module.out_features, module.in_features), np.int8)}))
            x = out
    return Graph(tensors, ops, first, x, INPUT_NAME, OUTPUT_NAME), macs, const


def cost(ae: dict, features: int) -> archgraph.Cost:
    graph, macs, const = engine_graph(ae, features)
    arena = planner.plan(graph, "greedy_by_size").peak_bytes()
    # the score needs no buffer of its own: it reads the input and output tensors in the arena
    return archgraph.Cost(macs=macs, params=sum(p.numel() for p in Autoencoder(ae, features).parameters()),
                          arena_bytes=arena, peak_sram_bytes=arena + archgraph.RUNTIME_SRAM_BYTES,
                          flash_bytes=const + archgraph.RUNTIME_FLASH_BYTES, weight_bytes=const, instructions=0)


# ---- training -----------------------------------------------------------------------------------------------------
def train(ae: dict, x: np.ndarray, train_cfg: dict, seed: int, epochs: int | None = None,
          progress: bool = True) -> Autoencoder:
    """MSE training on normal vectors `x` (float32 [N, frames * features]); Adam(W) with a cosine schedule."""
    seed_everything(seed, train_cfg["threads"])
    features = x.shape[1] // ae["frames"]
    net = Autoencoder(ae, features)
    net.standardise_on(x)
    epochs = epochs or train_cfg["epochs"]
    batch = train_cfg["batch_size"]
    optimizer = torch.optim.AdamW(net.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    steps = epochs * math.ceil(len(x) / batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    x_all = torch.from_numpy(x)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(total=steps, desc="train autoencoder", unit="step", disable=not progress, mininterval=2.0,
               file=sys.stderr)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_all), generator=generator)
        for start in range(0, len(order), batch):
            xb = x_all[order[start:start + batch]]
            if len(xb) < 2:
                continue
            loss = nn.functional.mse_loss(net(xb.reshape(net.input_shape(len(xb)))), xb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
    bar.close()
    return net.eval()


def reconstruct(net: Autoencoder, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """float32 [N, dim] reconstructions (torch, eval mode)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(x[start:start + batch])
            out.append(net(xb.reshape(net.input_shape(len(xb)))).numpy())
    return np.concatenate(out)


def clip_scores(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Mean squared error per clip: inputs/outputs float [clips, vectors, dim] -> float64 [clips]."""
    diff = outputs.astype(np.float64) - inputs.astype(np.float64)
    return (diff ** 2).mean(axis=(1, 2))


def export_onnx(net: Autoencoder, path: Path) -> None:
    """Fold batch norm, export (opset 17, dynamic batch), check; written atomically."""
    import onnx

    net = fold(net.eval())
    example = torch.zeros(net.input_shape(1))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model, full_check=True)
        model.producer_version = ""
        onnx.save(model, str(tmp))
