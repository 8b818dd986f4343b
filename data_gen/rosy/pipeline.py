"""``hyperlora rosy run``: read -> validate -> score -> route -> rewrite, then characterise and write.

    hyperlora rosy run --input PATH [PATH ...] --out DIR [--no-rewrite] [--limit N]

The per-record steps run on the local executor (shards with completion markers in ``.DIR.work`` beside ``DIR``,
so an interrupted run resumes) or on Ray. Whatever runs them, the end is the same: up-sampling if chosen (it needs
every kept document), k-means over the filtered documents, then ``DIR`` is written all at once
(``documents.parquet``, ``stats.json``, ``report.md``, ``clusters.png``) and the work directory is removed.
"""

import datetime
import itertools
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from hyperlora.errors import HyperLoRAError
from hyperlora.io import atomic_dir

from .characterise import assign_clusters, plot, write_report
from .readers import input_files, read_records
from .records import ROUTES, to_table
from .steps import MAX_CHARS, MIN_SIMILARITY, Rewrite, Route, Score, Validate

# Reasons that mean the input itself was bad (reported apart from the classifier's decisions).
MALFORMED = ("not_utf8", "malformed_json", "missing_text", "empty", "too_long")


def numbered(records, limit: int | None):
    """Give each record its input position ``n`` (the output order), stopping after ``limit`` records."""
    for n, r in enumerate(itertools.islice(records, limit)):
        r["n"] = n
        yield r


def make_rewriter(method: str | None, max_new_tokens: int):
    if method in (None, "upsample"):
        return None
    from .rewrite import LMRewriter

    return LMRewriter(method, max_new_tokens=max_new_tokens)


def build_stats(records: list[dict], settings: dict, seconds: float, timings: dict) -> dict:
    by_route = Counter(r["route"] for r in records)
    if None in by_route or sum(by_route.values()) != len(records):
        raise RuntimeError(f"records left unrouted: {by_route}")  # a bug in a step, never bad input
    rewritten = [r for r in records if r.get("rewrite") is not None]
    scored = sum(r.get("embedding") is not None for r in records)
    return {
        "input": len(records),
        "by_route": {k: by_route.get(k, 0) for k in ROUTES},
        "by_reason": dict(Counter(r["reason"] for r in records).most_common()),
        "by_route_and_reason": dict(Counter(f"{r['route']}/{r['reason']}" for r in records).most_common()),
        "malformed": {k: sum(r["reason"] == k for r in records) for k in MALFORMED},
        "by_source": {s: dict(Counter(r["route"] for r in records if r["source"] == s))
                      for s in sorted({r["source"] for r in records})},
        "rewrite": {
            "n": len(rewritten),
            "accepted": sum(r["route"] == "rewritten" for r in rewritten),
            "mean_topic_similarity": float(np.mean([r["topic_similarity"] for r in rewritten])) if rewritten else None,
            "mean_rosiness_before": float(np.mean([r["rosiness"] for r in rewritten])) if rewritten else None,
            "mean_rosiness_after": float(np.mean([r["rewrite_rosiness"] for r in rewritten])) if rewritten else None,
        },
        **settings,
        "date": datetime.date.today().isoformat(),
        "seconds": round(seconds, 2),
        "step_seconds": {k: round(v, 2) for k, v in timings.items()},
        "scored": scored,
        "score_docs_per_s": round(scored / timings["score"], 2) if timings.get("score") else None,
    }


def run_pipeline(inputs, out, fmt: str = "auto", limit: int | None = None, rewrite: str | None = "instruct",
                 executor: str = "local", force: bool = False, threshold: float | None = None,
                 head_path=None, max_chars: int = MAX_CHARS, max_new_tokens: int = 96,
                 min_similarity: float = MIN_SIMILARITY, n_clusters: int = 8,
                 shard_size: int = 1000, batch_size: int = 64, rewriter=None, progress: bool = True,
                 export_modes: bool = False) -> dict:
    """Run the rosy pipeline; returns the stats written to ``out/stats.json``.

    Args:
        inputs: input paths (files, directories of files, or a saved HF dataset).
        out: output directory (refused if it exists, unless ``force``).
        fmt: input format (``readers.FORMATS``; ``auto`` goes by file suffix).
        limit: read only the first ``limit`` input records.
        rewrite: ``instruct``, ``adapter``, ``plain``, ``upsample``, or None to drop unkind documents.
        executor: ``local`` (resumable shards) or ``ray``.
        threshold: rosiness cut (default: the head's calibrated threshold).
        min_similarity: topic similarity an LM rewrite needs to be kept (up-sampling is not held to it).
        rewriter: a ready rewriter object (``method`` + ``__call__(texts)``), overriding ``rewrite``'s LM.
        export_modes: also write ``modes.jsonl``, the run as a conditional-training corpus (``modes_export``).
    """
    out = Path(out)
    if out.exists() and not force:  # refused before any model loads
        raise HyperLoRAError(f"{out} already exists (use --force to replace it)")
    if limit is not None and limit < 1:
        raise HyperLoRAError(f"--limit must be at least 1, got {limit}")
    files = input_files(inputs)
    score = Score(head_path)
    threshold = score.head.threshold if threshold is None else threshold
    rewriter = rewriter or make_rewriter(rewrite, max_new_tokens)
    method = rewriter.method if rewriter is not None else rewrite
    steps = [Validate(max_chars), score, Route(threshold, rewrite=method is not None)]
    if rewriter is not None:
        steps.append(Rewrite(rewriter, score, threshold, min_similarity))
    settings = {"inputs": [str(f) for f in files], "format": fmt, "limit": limit, "rewrite_method": method,
                "threshold": threshold, "min_similarity": min_similarity, "scorer_version": score.head.version,
                "max_chars": max_chars, "executor": executor}

    start, timings = time.perf_counter(), {}
    records_in = numbered(read_records(files, fmt), limit)
    work = out.parent / f".{out.name}.work"
    if executor == "local":
        from .local import prepare_work_dir, run_local

        prepare_work_dir(work, {**settings, "shard_size": shard_size, "max_new_tokens": max_new_tokens})
        try:
            parts = run_local(records_in, steps, work, shard_size, batch_size, timings, progress)
        except HyperLoRAError:  # bad input found while reading: leave no scratch behind unless work was done
            if not list(work.glob("shard-*.done")):
                shutil.rmtree(work, ignore_errors=True)
            raise
        records = [row for p in parts for row in pq.read_table(p).to_pylist()]
    elif executor == "ray":
        from .ray_executor import run_ray

        records = run_ray(list(records_in), steps, batch_size)
    else:
        raise HyperLoRAError(f"unknown executor {executor!r} (local or ray)")
    if not records:
        shutil.rmtree(work, ignore_errors=True)
        raise HyperLoRAError(f"no documents in {', '.join(map(str, inputs))}")

    if method == "upsample":
        from .upsample import upsample

        upsample(records)
    clusters = assign_clusters(records, n_clusters)
    stats = build_stats(records, settings, time.perf_counter() - start, timings)
    with atomic_dir(out, force=force) as tmp:
        if export_modes:
            from .modes_export import write_modes

            stats["modes"] = write_modes(records, tmp / "modes.jsonl", time.strftime("%Y-%m-%d", time.gmtime()))
        pq.write_table(to_table(records, with_embedding=False), tmp / "documents.parquet")
        (tmp / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
        (tmp / "clusters.json").write_text(json.dumps(clusters, indent=1) + "\n")
        plot(records, clusters, threshold, tmp / "clusters.png")
        write_report(tmp / "report.md", stats, clusters, records, "clusters.png")
    shutil.rmtree(work, ignore_errors=True)
    return stats


def format_summary(stats: dict) -> str:
    routes = ", ".join(f"{k} {v}" for k, v in stats["by_route"].items())
    bad = sum(stats["malformed"].values())
    return f"{stats['input']} documents: {routes} ({bad} malformed or out of bounds); {stats['seconds']:.1f} s"
