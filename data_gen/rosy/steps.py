"""The pipeline's steps. Each maps a batch of records to the same batch (datatrove style) and routes a record at
most once: it only looks at records whose ``route`` is still ``None``.

``Validate`` drops empty and huge documents; ``Score`` adds rosiness and the embedding; ``Route`` keeps rosy
documents and drops (or leaves for the rewriter) the others; ``Rewrite`` rewrites, re-scores and routes what is
left. Models load lazily on the first batch, so steps pickle small (Ray ships them to its workers).
"""

import datetime

import numpy as np

from .classifier import RosinessHead
from .records import pending

MAX_CHARS = 100_000  # longer documents are dropped as "too_long" (a web page rarely exceeds this; a dump does)
# Rewrites less similar than this to their original are off topic. Paraphrases of one fortune score ~0.5-0.8 and
# unrelated fortunes ~0.0-0.2 with this encoder; 0.3 sits between.
MIN_SIMILARITY = 0.3


class Validate:
    """Drop empty and over-long documents with the reason ``empty`` / ``too_long``."""

    name = "validate"

    def __init__(self, max_chars: int = MAX_CHARS):
        self.max_chars = max_chars

    def __call__(self, records: list[dict]) -> list[dict]:
        for r in pending(records):
            if not r["text"].strip():
                r["route"], r["reason"] = "dropped", "empty"
            elif len(r["text"]) > self.max_chars:
                r["route"], r["reason"] = "dropped", "too_long"
        return records


class Score:
    """Add ``rosiness``, ``embedding`` (384 floats), ``scorer_version`` and ``date`` to every pending record.

    Args:
        head_path: a rosiness head JSON (default: the shipped one).
        batch_size: documents per encoder forward.
    """

    name = "score"

    def __init__(self, head_path=None, batch_size: int = 32):
        self.head_path, self.batch_size = head_path, batch_size
        self.head = RosinessHead.load(head_path)
        self._embedder = None

    @property
    def embedder(self):
        if self._embedder is None:
            from .embed import Embedder

            self._embedder = Embedder(window=self.head.window, batch_size=self.batch_size)
        return self._embedder

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rosiness (N,), embeddings (N, 384)) for raw texts."""
        emb = self.embedder(texts)
        return self.head.predict(emb), emb

    def __call__(self, records: list[dict]) -> list[dict]:
        todo = pending(records)
        rosiness, emb = self.score([r["text"] for r in todo])
        today = datetime.date.today().isoformat()
        for r, p, e in zip(todo, rosiness, emb):
            r.update(rosiness=float(p), embedding=e.tolist(), scorer_version=self.head.version, date=today)
        return records

    def __getstate__(self):  # ship the settings, not the loaded encoder
        return {**self.__dict__, "_embedder": None}


class Route:
    """Keep documents at or above ``threshold`` (reason ``rosy``); the others are ``unkind``: dropped, or left
    pending for a rewriter when ``rewrite`` is true."""

    name = "route"

    def __init__(self, threshold: float, rewrite: bool):
        self.threshold, self.rewrite = threshold, rewrite

    def __call__(self, records: list[dict]) -> list[dict]:
        for r in pending(records):
            if r["rosiness"] >= self.threshold:
                r["route"], r["reason"] = "kept", "rosy"
            else:
                r["reason"] = "unkind"
                if not self.rewrite:
                    r["route"] = "dropped"
        return records


class Rewrite:
    """Rewrite every pending record, re-score the rewrite, and route it: ``rewritten`` if the rewrite is rosy
    and still about the same thing, else ``dropped`` (reason ``rewrite_empty``, ``rewrite_still_unkind`` or
    ``rewrite_off_topic``). Adds ``rewrite``, ``rewrite_method``, ``rewrite_rosiness`` and ``topic_similarity``
    (cosine of the original's and the rewrite's embeddings).

    Args:
        rewriter: an object with ``method`` (a name) and ``__call__(texts) -> rewrites``.
        score: the ``Score`` step (its encoder and head judge the rewrite).
        threshold: the rosiness a rewrite needs.
        min_similarity: the topic similarity a rewrite needs: a rosy text about something else is not a rewrite
            (a small LM sometimes answers with an unrelated pleasantry or a string of digits).
    """

    name = "rewrite"

    def __init__(self, rewriter, score: Score, threshold: float, min_similarity: float = MIN_SIMILARITY):
        self.rewriter, self.score, self.threshold = rewriter, score, threshold
        self.min_similarity = min_similarity

    def __call__(self, records: list[dict]) -> list[dict]:
        todo = pending(records)
        if not todo:
            return records
        rewrites = self.rewriter([r["text"] for r in todo])
        rosiness, emb = self.score.score(rewrites)
        for r, text, p, e in zip(todo, rewrites, rosiness, emb):
            similarity = float(np.dot(np.asarray(r["embedding"], dtype=np.float32), e))
            r.update(rewrite=text, rewrite_method=self.rewriter.method, rewrite_rosiness=float(p),
                     topic_similarity=similarity)
            if not text.strip():
                r["route"], r["reason"] = "dropped", "rewrite_empty"
            elif p < self.threshold:
                r["route"], r["reason"] = "dropped", "rewrite_still_unkind"
            elif similarity < self.min_similarity:
                r["route"], r["reason"] = "dropped", "rewrite_off_topic"
            else:
                r["route"] = "rewritten"  # reason stays "unkind": why it needed rewriting
        return records


def run_steps(steps, records: list[dict], timings: dict | None = None) -> list[dict]:
    """Apply ``steps`` in order to one batch; add each step's seconds to ``timings[name]`` when given."""
    import time

    for step in steps:
        start = time.perf_counter()
        records = step(records)
        if timings is not None:
            timings[step.name] = timings.get(step.name, 0.0) + time.perf_counter() - start
    return records
