"""k-means on unit embeddings (k-means++ seeding, Lloyd iterations) and distinctive terms per cluster.

Written here in numpy rather than taken from scikit-learn: a few lines, deterministic per seed, and no extra
dependency for the package.
"""

import re
from collections import Counter

import numpy as np

STOPWORDS = set("""
a about above after again against all am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom why
will with would you your yours yourself yourselves one two also like get got let may might must shall us upon said
says say man men don didn doesn isn wasn aren won can't it's i'm don't
""".split())


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Cluster rows of ``x`` (N, D); returns (labels (N,), centroids (k, D)). ``k`` is capped at N."""
    k = max(1, min(k, len(x)))
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(len(x))]]
    for _ in range(1, k):  # k-means++: far points are likelier seeds
        d2 = np.min(((x[:, None] - np.array(centroids)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() == 0:
            break
        centroids.append(x[rng.choice(len(x), p=d2 / d2.sum())])
    centroids = np.array(centroids)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iters):
        labels_new = np.argmin(((x[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        if _ and (labels_new == labels).all():
            break
        labels = labels_new
        for c in range(len(centroids)):
            if (labels == c).any():
                centroids[c] = x[labels == c].mean(0)
    return labels, centroids


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z']{2,}", text.lower()) if w not in STOPWORDS]


def top_terms(cluster_texts: list[str], all_texts: list[str], n: int = 8) -> list[str]:
    """Terms frequent in the cluster and rarer elsewhere: count × log-ratio of the two frequencies."""
    inside = Counter(w for t in cluster_texts for w in set(words(t)))
    overall = Counter(w for t in all_texts for w in set(words(t)))
    n_in, n_all = max(len(cluster_texts), 1), max(len(all_texts), 1)
    score = {w: c * np.log((c / n_in) / ((overall[w] + 1) / n_all)) for w, c in inside.items() if c >= 2}
    return [w for w, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
