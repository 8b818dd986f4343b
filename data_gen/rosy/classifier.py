"""The rosiness head: logistic regression on frozen MiniLM embeddings, shipped as one small JSON file.

``rosiness = sigmoid(w · embedding + b)`` is the probability that a document could come from the kind world of
the first seed; documents under ``threshold`` are filtered. The file carries its version, the threshold, how it
was trained and its scores on the hand-labelled set, so an output's ``scorer_version`` says everything about it.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).parent / "assets" / "rosiness-v1.json"


@dataclass
class RosinessHead:
    """Args: version (e.g. ``rosiness-v1``), weight (384 floats), bias, threshold, and free-form info."""

    version: str
    weight: list[float]
    bias: float
    threshold: float
    encoder: str = "all-minilm-l6-v2"
    window: int = 256
    info: dict = field(default_factory=dict)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, 384) unit embeddings -> (N,) rosiness in [0, 1]."""
        logits = embeddings.astype(np.float64) @ np.asarray(self.weight, dtype=np.float64) + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path=None) -> "RosinessHead":
        """The head in ``path``; the shipped one when None."""
        return cls(**json.loads(Path(path or SHIPPED).read_text()))
