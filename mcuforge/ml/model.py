"""Build a torch network from an architecture spec (`schemas.arch.ArchSpec`) and count its cost."""
from __future__ import annotations

import torch
from torch import nn

from schemas.arch import ArchSpec


def _act(kind: str) -> nn.Module:
    return nn.ReLU6() if kind == "relu6" else nn.ReLU()


class ConvBN(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm -> optional activation; BN is folded into the conv before export."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = "relu6"):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            layers.append(_act(act))
        super().__init__(*layers)


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expand -> kxk depthwise -> 1x1 project, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int, act: str):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBN(cin, hidden, 1, act=act))
        layers.append(ConvBN(hidden, hidden, kernel, stride, groups=hidden, act=act))
        layers.append(ConvBN(hidden, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class Net(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        act = spec.activation
        channels = spec.scaled(spec.stem.channels)
        layers: list[nn.Module] = [ConvBN(spec.input.channels, channels, spec.stem.kernel, spec.stem.stride, act=act)]
        for stage in spec.stages:
            out = spec.scaled(stage.channels)
            for index, (kernel, expansion) in enumerate(zip(stage.block_kernels(), stage.block_expansions())):
                stride = stage.stride if index == 0 else 1
                layers.append(MBConv(channels, out, kernel, stride, expansion, act))
                channels = out
        if spec.head.channels:
            head = spec.scaled(spec.head.channels)
            layers.append(ConvBN(channels, head, 1, act=act))
            channels = head
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.head.dropout)
        self.classifier = nn.Linear(channels, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def build(spec: ArchSpec) -> Net:
    return Net(spec)


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every BatchNorm into the conv before it (eval mode), in place; returns the net."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in net.modules():
        if isinstance(module, ConvBN):
            conv, bn = module[0], module[1]
            module[0] = fuse_conv_bn_eval(conv, bn)
            module[1] = nn.Identity()
    return net


def count_macs_params(spec: ArchSpec) -> tuple[int, int]:
    """Multiply-accumulates per inference and parameter count (after BN folding), from the layer shapes."""
    net = build(spec).eval()
    macs = 0

    def hook(module: nn.Module, inputs, output) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * kh * kw * module.in_channels // module.groups
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, spec.input.channels, spec.input.resolution, spec.input.resolution))
    for handle in handles:
        handle.remove()
    params = 0
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            params += module.weight.numel() + module.out_channels  # folded BN adds a bias
        elif isinstance(module, nn.Linear):
            params += module.weight.numel() + module.out_features
    return macs, params
