"""A small image classifier (conv + pooling + linear) shipped as a Core ML image input.

The module takes `image` float32 [B, 3, 32, 32] scaled to [-1, 1] and
returns `logits` [B, 10]. The Core ML package takes pixels (0..255) and
scales them itself (`image = { scale = 2/255, bias = -1 }` in the
configuration), which is how an app hands it a camera frame. Ten synthetic
classes (five colours, stripes across or down) make a task it learns in a
few seconds, seeded:

    python -m examples.image_classifier weights/image_classifier.safetensors

`build(checkpoint)` is the adapter; `examples(cases)` yields real-looking
pictures, as pixels, at each declared shape.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file
from torch import nn

COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9], [0.9, 0.8, 0.1], [0.7, 0.2, 0.8]])
SIZE = 32


class TinyClassifier(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.head = nn.Linear(16, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).mean(dim=(2, 3)))


def pictures(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Pixels (0..255) of striped pictures: colour = label // 2, stripes down when label is odd."""
    n = labels.shape[0]
    phase = torch.rand(n, generator=gen) * 6.28
    axis = torch.arange(SIZE, dtype=torch.float32)
    stripes = 0.5 + 0.5 * torch.sin(axis[None, :] * 1.2 + phase[:, None])       # [n, SIZE]
    across = stripes[:, :, None].expand(n, SIZE, SIZE)
    pattern = torch.where((labels % 2 == 1)[:, None, None], across.transpose(1, 2), across)
    colour = COLOURS[labels // 2][:, :, None, None]
    noise = torch.rand(n, 3, SIZE, SIZE, generator=gen) * 0.15
    return ((colour * pattern[:, None] + noise).clamp(0, 1) * 255).round()


def to_model(pixels: torch.Tensor) -> torch.Tensor:
    """What the package computes from pixels before the module: 2/255 * pixel - 1."""
    return pixels * (2.0 / 255.0) - 1.0


def train(out: Path, steps: int = 80, seed: int = 0) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait on each other
    try:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = TinyClassifier()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            labels = torch.randint(0, 10, (32,), generator=gen)
            loss = nn.functional.cross_entropy(model(to_model(pictures(labels, gen))), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
    return out


def build(checkpoint: Path | None = None) -> nn.Module:
    model = TinyClassifier()
    if checkpoint is not None:
        model.load_state_dict(load_file(str(checkpoint)))
    return model.eval()


def examples(cases: list[dict[str, int]]) -> Iterator[dict[str, torch.Tensor]]:
    """Pictures of every class, as pixels, at each declared batch size."""
    gen = torch.Generator().manual_seed(1)
    for case in cases:
        for start in range(0, 10, case["B"]):
            labels = torch.arange(start, start + case["B"]) % 10
            yield {"image": pictures(labels, gen)}


if __name__ == "__main__":
    print(train(Path(sys.argv[1] if len(sys.argv) > 1 else "weights/image_classifier.safetensors")))
