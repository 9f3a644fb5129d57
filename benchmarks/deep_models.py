"""The deep benchmark models (ResNet-20, VGG-16, ResNet-18) on Fashion-MNIST padded to 32x32, trained and cached.

Each model is trained as a plain-ReLU ANN (the training-free path) and as a QCFS ANN (L = 8 for ResNet-20, L = 4
for VGG-16 and ResNet-18). VGG-16 and ResNet-18 train from scratch (6 and 10 epochs, about 1 minute per epoch on
2 idle cores); ResNet-20 costs ~6 minutes per epoch, so its QCFS variant is fine-tuned from the trained ReLU
ResNet-20 (``prepare`` on the trained weights, the usual QCFS recipe for pretrained ANNs) with a 2-epoch cosine
schedule from lr 0.01, stopped after its first epoch (``max_steps``; 90.9% test accuracy).
``python benchmarks/deep_models.py`` trains every missing one into ``benchmarks/models/`` (committed, so a clean
clone only evaluates).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ann2snn as a2s  # noqa: E402
from common import DATASET, cached_model  # noqa: E402

IMAGE_SIZE = 32
EPOCHS = {"resnet20": 6, "vgg16": 6, "resnet18": 10}  # ResNet-18 (8x8 after its stem) is cheap
SEED = 0

# architecture options per benchmark model (widths that train on 2 cores and stay under 5 MB)
ARCHS: dict[str, dict[str, Any]] = {
    "resnet20": {"name": "resnet20"},
    "vgg16": {"name": "vgg16", "width": 16, "hidden": 256},
    "resnet18": {"name": "resnet18", "stem": "imagenet", "width": 16},
}
# QCFS variants fine-tuned from the trained ReLU model: arch -> (schedule epochs, lr, epochs run)
FINETUNE: dict[str, tuple[int, float, int]] = {"resnet20": (2, 0.01, 1)}
STEPS_PER_EPOCH = 60000 // 128  # Fashion-MNIST train set, batch 128, last partial batch dropped
# (architecture, activation, levels)
VARIANTS: list[tuple[str, str, int | None]] = [
    ("resnet20", "relu", None),
    ("resnet20", "qcfs", 8),
    ("vgg16", "relu", None),
    ("vgg16", "qcfs", 4),
    ("resnet18", "relu", None),
    ("resnet18", "qcfs", 4),
]


def padded_fashion(split: str, limit: int | None = None) -> TensorDataset:
    """Fashion-MNIST ``split`` with every 28x28 image zero-padded to 32x32 (2 pixels each side)."""
    ds = a2s.load_dataset(DATASET, split, limit=limit)
    x, y = ds.tensors  # type: ignore[attr-defined]
    pad = (IMAGE_SIZE - x.shape[-1]) // 2
    return TensorDataset(F.pad(x, (pad, pad, pad, pad)).contiguous(), y)


def model_key(arch: str, activation: str, levels: int | None, seed: int = SEED, epochs: int | None = None) -> str:
    if activation != "relu" and arch in FINETUNE and epochs is None:
        schedule, _, run = FINETUNE[arch]
        return f"{arch}_{activation}_L{levels}_ft{run}of{schedule}_s{seed}"
    epochs = epochs or EPOCHS[arch]
    return f"{arch}_{activation}" + (f"_L{levels}" if levels else "") + f"_e{epochs}_s{seed}"


def build(arch: str, activation: str, levels: int | None, seed: int = SEED) -> tuple[nn.Module, Any]:
    """The untrained (prepared) model and its QuantConfig (``None`` for ReLU)."""
    model = a2s.create_model(num_classes=10, in_channels=1, image_size=IMAGE_SIZE, seed=seed, **ARCHS[arch])
    if activation == "relu":
        return model, None
    quant = a2s.QuantConfig(activation=activation, levels=levels or 8)
    return a2s.prepare(model, quant), quant


def trained(arch: str, activation: str, levels: int | None, seed: int = SEED, epochs: int | None = None) -> nn.Module:
    """The trained model: the committed checkpoint if present, else train it (see :func:`common.cached_model`)."""
    key = model_key(arch, activation, levels, seed, epochs)
    finetune = activation != "relu" and arch in FINETUNE and epochs is None
    lr, max_steps = 0.05, None
    if finetune:
        epochs, lr, run = FINETUNE[arch]
        max_steps = run * STEPS_PER_EPOCH
    epochs = epochs or EPOCHS[arch]

    def train_fn(out: Path) -> None:
        model, quant = build(arch, activation, levels, seed)
        if finetune:  # start from the trained ReLU model's weights
            assert quant is not None
            model = a2s.prepare(trained(arch, "relu", None, seed), quant)
        print(f"training {key} ({epochs} epochs, lr {lr})", flush=True)
        result = a2s.train(
            model,
            padded_fashion("train"),
            a2s.TrainConfig(epochs=epochs, batch_size=128, lr=lr, seed=seed),
            out_dir=out,
            eval_data=padded_fashion("test"),
            progress=True,
            quant=quant,
            dataset=DATASET,
            resume=True,
            max_steps=max_steps,
        )
        print(f"{key}: eval accuracy {result.eval_acc:.4f}", flush=True)

    return cached_model(key, train_fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=None, help="comma-separated model keys prefixes, e.g. resnet20_relu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for arch, act, levels in VARIANTS:
        key = model_key(arch, act, levels)
        if args.only and not any(key.startswith(p) for p in args.only.split(",")):
            continue
        trained(arch, act, levels)


if __name__ == "__main__":
    main()
