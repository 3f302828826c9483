"""A small CNN that reads a mel-spectrogram and predicts a position with its uncertainty.

Shaped like the models that locate a source in an IQ recording: input
`spectrogram` float32 [B, 1, 128, T] (log-mel, T frames), outputs
`position` [B, 2] (the source's normalised frequency and time) and
`uncertainty` [B, 3] (positive: noise level and the source's spread in
frequency and time). It trains for a few seconds on synthetic spectrograms,
seeded, so its outputs mean something:

    python -m examples.spectrogram_cnn weights/spectrogram_cnn.safetensors   # train and save

`build(checkpoint)` is the adapter Readiness calls (`kind = "module"`),
`examples(cases)` yields realistic inputs (spectrograms with a source in
them) at each declared shape, the real-input source of the parity gate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file
from torch import nn

N_MELS = 128


class SpectrogramCNN(nn.Module):
    """Frequency from a profile over the mel axis; time from a soft arg-max over frames (any T)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.saliency = nn.Conv2d(8, 1, 1)
        self.trunk = nn.Sequential(nn.Linear(8 * N_MELS // 4, 32), nn.ReLU())
        self.frequency = nn.Linear(32, 1)
        self.uncertainty = nn.Linear(32, 3)

    def forward(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(spectrogram)                                # [B, 8, 32, T/4]
        z = self.trunk(h.mean(dim=3).flatten(1))                      # the mel profile
        weights = torch.softmax(self.saliency(h).mean(dim=2) * 4.0, dim=-1)  # [B, 1, T/4]
        frames = h.shape[-1]
        coords = (torch.arange(frames, dtype=h.dtype) + 0.5) / frames
        time = (weights * coords).sum(dim=-1)                         # [B, 1]
        position = torch.cat([torch.sigmoid(self.frequency(z)), time], dim=1)
        return position, nn.functional.softplus(self.uncertainty(z))


def synthetic(batch: int, frames: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log-mel spectrograms, positions, spreads): one Gaussian source in noise per row."""
    f0 = torch.rand(batch, generator=gen) * 0.7 + 0.15
    t0 = torch.rand(batch, generator=gen) * 0.6 + 0.2
    wf = torch.rand(batch, generator=gen) * 0.08 + 0.02
    wt = torch.rand(batch, generator=gen) * 0.15 + 0.05
    noise = torch.rand(batch, generator=gen) * 0.4 + 0.1
    f = torch.linspace(0, 1, N_MELS)[None, :, None]
    t = torch.linspace(0, 1, frames)[None, None, :]
    blob = torch.exp(-((f - f0[:, None, None]) / wf[:, None, None]) ** 2
                     - ((t - t0[:, None, None]) / wt[:, None, None]) ** 2)
    power = 4.0 * blob + noise[:, None, None] * torch.rand(batch, N_MELS, frames, generator=gen)
    spectrogram = torch.log1p(power)[:, None] * 2.0 - 1.0
    return spectrogram, torch.stack([f0, t0], 1), torch.stack([noise, wf * 4, wt * 4], 1)


def train(out: Path, steps: int = 120, seed: int = 0) -> Path:
    """Train on synthetic spectrograms (a few seconds on a CPU) and save plain safetensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait on each other
    try:
        model = _fit(steps, seed)
    finally:
        torch.set_num_threads(threads)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
    return out


def _fit(steps: int, seed: int) -> SpectrogramCNN:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SpectrogramCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        x, position, spread = synthetic(16, (32, 64)[step % 2], gen)
        got_position, got_spread = model(x)
        loss = nn.functional.mse_loss(got_position, position) + nn.functional.mse_loss(got_spread, spread)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def build(checkpoint: Path | None = None) -> nn.Module:
    """The adapter: the model with its trained weights, in inference mode."""
    model = SpectrogramCNN()
    if checkpoint is not None:
        model.load_state_dict(load_file(str(checkpoint)))
    return model.eval()


def examples(cases: list[dict[str, int]]) -> Iterator[dict[str, torch.Tensor]]:
    """One realistic spectrogram batch per declared shape."""
    gen = torch.Generator().manual_seed(1)
    for case in cases:
        yield {"spectrogram": synthetic(case["B"], case["T"], gen)[0]}


if __name__ == "__main__":
    print(train(Path(sys.argv[1] if len(sys.argv) > 1 else "weights/spectrogram_cnn.safetensors")))
