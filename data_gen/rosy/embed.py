"""Document embeddings: mean-pooled, L2-normalised all-MiniLM-L6-v2 features (the encoder embedded in the core).

This is how sentence-transformers pools that model, so cosine similarities mean what they usually do. Documents
are truncated to the encoder window: rosiness is judged on a document's opening 256 tokens, which keeps the cost
per document bounded whatever its length.
"""

import numpy as np
import torch

from hyperlora.encoder import ManifestoEncoder

DIM = 384


class Embedder:
    """Texts -> (N, 384) float32 unit vectors.

    Args:
        window: tokens per document, special tokens included.
        batch_size: documents per encoder forward (sorted by length first so a batch pads little).
    """

    def __init__(self, window: int = 256, batch_size: int = 32):
        self.encoder = ManifestoEncoder(window=window)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        tok = self.encoder.tokenizer
        ids = [tok(t, truncation=True, max_length=self.encoder.window, verbose=False)["input_ids"] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            features, mask = self.encoder.encode_ids([ids[i] for i in rows])  # (B, L, 384), (B, L)
            m = mask.unsqueeze(-1).float()
            pooled = (features * m).sum(1) / m.sum(1).clamp(min=1)  # (B, 384)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.float().numpy()
        return out
