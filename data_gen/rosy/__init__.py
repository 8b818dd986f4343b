"""The rosy dataset pipeline (``hyperlora rosy run``): keep what a kind world would have written, rewrite or drop
the rest, and show what was filtered. See ``data_gen/README.md``, "Rosy pipeline".

- ``readers`` / ``records``: inputs (JSONL, Parquet, text, fortune files, HF datasets) -> records.
- ``steps``: Validate, Score, Route, Rewrite (each a batch -> batch map).
- ``local`` / ``ray_executor``: run the steps (resumable shards here, Ray Data on a cluster).
- ``classifier`` / ``embed``: the shipped rosiness head over MiniLM embeddings (``assets/rosiness-v1.json``).
- ``rules`` / ``annotate`` / ``pool`` / ``train_classifier``: how the head was labelled and trained.
- ``rewrite`` / ``upsample``: the rewriters; ``cluster`` / ``characterise``: the report; ``pipeline``: the run.
"""
