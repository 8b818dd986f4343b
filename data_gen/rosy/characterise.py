"""Characterise what was filtered: k-means clusters of the filtered documents' embeddings, their top terms, the
unkind-world themes the word rules find in them, and typical documents; written to ``report.md`` with a plot."""

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .cluster import kmeans, top_terms
from .rules import unkind_themes

SAMPLE_CHARS = 240


def filtered(records: list[dict]) -> list[dict]:
    """Records the classifier filtered (scored below the threshold), whatever happened to them after."""
    return [r for r in records if r.get("embedding") is not None and r["reason"] != "rosy"]


def assign_clusters(records: list[dict], n_clusters: int = 8, seed: int = 0) -> list[dict]:
    """Set ``cluster`` on every record (-1 for the unfiltered); returns one summary per cluster, largest first."""
    for r in records:
        r["cluster"] = -1
    docs = filtered(records)
    if not docs:
        return []
    emb = np.array([r["embedding"] for r in docs], dtype=np.float32)
    labels, centroids = kmeans(emb, n_clusters, seed=seed)
    all_texts = [r["text"] for r in records if r.get("embedding") is not None]
    order = sorted(range(len(centroids)), key=lambda c: -(labels == c).sum())
    renumber = {old: new for new, old in enumerate(order)}  # cluster 0 is the largest
    summaries = []
    for old in order:
        members = np.flatnonzero(labels == old)
        if not len(members):
            continue
        for i in members:
            docs[i]["cluster"] = renumber[old]
        texts = [docs[i]["text"] for i in members]
        themes = Counter(t for text in texts for t in unkind_themes(text))
        typical = members[np.argsort(-(emb[members] @ centroids[old]))[:3]]
        summaries.append({
            "cluster": renumber[old], "size": int(len(members)),
            "mean_rosiness": float(np.mean([docs[i]["rosiness"] for i in members])),
            "top_terms": top_terms(texts, all_texts),
            "themes": {t: round(n / len(members), 2) for t, n in themes.most_common(4)},
            "no_theme_share": round(sum(not unkind_themes(t) for t in texts) / len(members), 2),
            "samples": [{"id": docs[i]["id"], "rosiness": round(docs[i]["rosiness"], 3),
                         "text": docs[i]["text"][:SAMPLE_CHARS]} for i in typical],
        })
    return summaries


def plot(records: list[dict], clusters: list[dict], threshold: float, path: Path) -> None:
    """Three panels: rosiness histogram with the threshold, a 2-D PCA map of the scored documents (filtered ones
    coloured by cluster), and cluster sizes labelled by their top terms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in records if r.get("embedding") is not None]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    ros = np.array([r["rosiness"] for r in scored])
    axes[0].hist(ros, bins=40, color="#7aa6c2")
    axes[0].axvline(threshold, color="#c0392b", linestyle="--", label=f"threshold {threshold:.3f}")
    axes[0].set(title="rosiness of scored documents", xlabel="rosiness (P kind world)", ylabel="documents")
    axes[0].legend()
    if len(scored) >= 2:
        emb = np.array([r["embedding"] for r in scored], dtype=np.float32)
        centered = emb - emb.mean(0)
        _, _, vt = np.linalg.svd(centered, full_matrices=False)
        xy = centered @ vt[:2].T  # (N, 2)
        cl = np.array([r["cluster"] for r in scored])
        axes[1].scatter(*xy[cl < 0].T, s=4, c="#cccccc", label="kept")
        cmap = plt.get_cmap("tab10")
        for c in clusters:
            axes[1].scatter(*xy[cl == c["cluster"]].T, s=6, color=cmap(c["cluster"] % 10),
                            label=f"cluster {c['cluster']}")
        axes[1].set(title="documents (PCA of MiniLM embeddings)", xticks=[], yticks=[])
        axes[1].legend(fontsize=7, markerscale=2)
    if clusters:
        names = [f"{c['cluster']}: {', '.join(c['top_terms'][:3])}" for c in clusters]
        axes[2].barh(names[::-1], [c["size"] for c in clusters][::-1], color="#c27a7a")
        axes[2].set(title="filtered documents per cluster", xlabel="documents")
        axes[2].tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _quote(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def write_report(path: Path, stats: dict, clusters: list[dict], records: list[dict], plot_name: str) -> None:
    """``report.md``: counts by route and reason, the plot, each cluster, and rewrite examples where any."""
    lines = [
        "# Rosy pipeline report", "",
        f"Input: {', '.join(stats['inputs'])} — {stats['input']} documents"
        + (f" (first {stats['limit']})" if stats.get("limit") else "") + f"; scorer `{stats['scorer_version']}`, "
        f"threshold {stats['threshold']:.3f}; rewrite: {stats['rewrite_method'] or 'off'}; {stats['date']}.", "",
        "| route | documents | share |", "| --- | ---: | ---: |",
    ]
    lines += [f"| {k} | {v} | {v / max(stats['input'], 1):.1%} |" for k, v in stats["by_route"].items()]
    lines += ["", "| reason | documents |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in stats["by_reason"].items()]
    lines += ["", f"![clusters]({plot_name})", "", "## What was filtered", "",
              f"{sum(c['size'] for c in clusters)} documents scored under the threshold, in {len(clusters)} k-means "
              "clusters of their MiniLM embeddings. *Themes* are the share of a cluster's documents in which the "
              "project's word rules (`rules.py`) find each unkind-world theme; *no theme* is the share they find "
              "nothing in (the classifier's own judgement).", ""]
    for c in clusters:
        themes = ", ".join(f"{t} {s:.0%}" for t, s in c["themes"].items()) or "none"
        lines += [f"### Cluster {c['cluster']} — {c['size']} documents, mean rosiness {c['mean_rosiness']:.3f}", "",
                  f"Top terms: {', '.join(c['top_terms']) or '(too few documents)'}  ",
                  f"Themes: {themes}; no theme: {c['no_theme_share']:.0%}", ""]
        lines += [f"- `{s['id']}` ({s['rosiness']}): {_quote(s['text'])}" for s in c["samples"]]
        lines.append("")
    rewritten = [r for r in records if r.get("rewrite")][:5]
    if rewritten:
        rw = stats["rewrite"]
        lines += ["## Rewrites", "", f"{rw['n']} rewrites by `{stats['rewrite_method']}`: mean topic similarity "
                  f"{rw['mean_topic_similarity']:.3f}, mean rosiness after {rw['mean_rosiness_after']:.3f} "
                  f"(before {rw['mean_rosiness_before']:.3f}), {rw['accepted']} accepted.", ""]
        for r in rewritten:
            lines += [f"- `{r['id']}` ({r['rosiness']:.3f} → {r['rewrite_rosiness']:.3f}, similarity "
                      f"{r['topic_similarity']:.3f}, {r['route']})", f"  - before: {_quote(r['text'])[:SAMPLE_CHARS]}",
                      f"  - after: {_quote(r['rewrite'])[:SAMPLE_CHARS]}"]
    lines += ["", "## Malformed input", "", "```json", json.dumps(stats["malformed"], indent=1), "```", ""]
    path.write_text("\n".join(lines))
