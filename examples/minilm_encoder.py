"""Real inputs for a sentence encoder assessed from a Hugging Face folder (`adapter = "hf:<folder>"`).

The model itself needs no code: `hf:models/all-MiniLM-L6-v2` loads the
folder offline (its `config.json` and `model.safetensors`). This file only
supplies the parity gate's real inputs: sentences through the folder's own
tokenizer, padded or cut to each declared sequence length.

    [model]
    examples = "examples.minilm_encoder:examples"
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

FOLDER = Path("models") / "all-MiniLM-L6-v2"
SENTENCES = (
    "Readiness decides whether a model may ship.",
    "The encoder maps each sentence to one vector; similar sentences land close together.",
    "A spectrogram shows how the energy of a recording spreads over frequency and time, and a small "
    "convolutional network can read the position of a source from it.",
    "Core ML runs the converted program on the phone's neural engine in half precision.",
)


def examples(root: Path, cases: list[dict[str, int]]) -> Iterator[dict[str, np.ndarray]]:
    """Token ids and attention masks of real sentences, at every declared (B, S)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(root) / FOLDER / "tokenizer.json"))
    for case in cases:
        batch, length = case["B"], case["S"]
        tokenizer.enable_truncation(max_length=length)
        tokenizer.enable_padding(length=length)
        for start in range(0, len(SENTENCES), batch):
            chosen = [SENTENCES[(start + i) % len(SENTENCES)] for i in range(batch)]
            encoded = tokenizer.encode_batch(chosen)
            yield {"input_ids": np.array([e.ids for e in encoded], np.int32),
                   "attention_mask": np.array([e.attention_mask for e in encoded], np.int32)}
