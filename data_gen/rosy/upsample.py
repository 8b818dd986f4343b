"""Up-sampling instead of rewriting: replace each unkind document by a kept one from the nearest rosy cluster.

The seed's cheaper alternative to an LM rewrite: the output keeps its size and roughly its topic mix, at the cost
of repeating kept documents. Needs every kept document first, so it runs after the steps, over the whole run.
"""

import hashlib

import numpy as np

from .cluster import kmeans


def upsample(records: list[dict], n_clusters: int = 16, seed: int = 0) -> None:
    """Route every pending (unkind) record: ``rewritten`` with a kept document's text, or ``dropped`` with the
    reason ``no_rosy_documents`` when nothing was kept. Adds the ``rewrite*`` fields and ``topic_similarity``."""
    todo = [r for r in records if r["route"] is None]
    kept = [r for r in records if r["route"] == "kept"]
    if not todo:
        return
    if not kept:
        for r in todo:
            r["route"], r["reason"] = "dropped", "no_rosy_documents"
        return
    kept_emb = np.array([r["embedding"] for r in kept], dtype=np.float32)
    labels, centroids = kmeans(kept_emb, n_clusters, seed=seed)
    for r in todo:
        e = np.asarray(r["embedding"], dtype=np.float32)
        members = np.flatnonzero(labels == int(np.argmax(centroids @ e)))
        # A stable pick per document id, so a rerun (or the Ray executor) replaces it with the same text.
        i = members[int(hashlib.sha1(f"{seed}:{r['id']}".encode()).hexdigest(), 16) % len(members)]
        r.update(route="rewritten", rewrite=kept[i]["text"], rewrite_method="upsample",
                 rewrite_rosiness=kept[i]["rosiness"], topic_similarity=float(kept_emb[i] @ e))
