"""Records: the unit every rosy step reads and writes (a plain dict, so it crosses Ray and Arrow unchanged).

A record starts as ``{id, text, source, metadata, route, reason}`` from a reader; steps add fields. ``route`` is
``None`` while undecided, then one of ``ROUTES``; a step never touches a record another step has routed, so every
input record leaves with exactly one route. ``metadata`` is JSON text (one Arrow type whatever a source carries).
"""

import json

ROUTES = ("kept", "rewritten", "dropped")

# Fields of a finished record, in output order (``embedding`` is kept in shard parts only, for clustering).
FIELDS = ("id", "text", "source", "metadata", "route", "reason", "rosiness", "rewrite", "rewrite_method",
          "rewrite_rosiness", "topic_similarity", "cluster", "scorer_version", "date")


def make_record(id: str, text: str | None, source: str, metadata: dict | None = None,
                bad: str | None = None) -> dict:
    """A fresh record. ``bad`` names why the input could not be read (malformed JSON, not UTF-8...): such a
    record is dropped with that reason by the first step instead of disappearing from the counts."""
    record = {"id": str(id), "text": text, "source": source,
              "metadata": json.dumps(metadata or {}, ensure_ascii=False, default=str),
              "route": None, "reason": None}
    if bad is not None:
        record["route"], record["reason"] = "dropped", bad
    return record


def pending(records: list[dict]) -> list[dict]:
    """The records no step has routed yet."""
    return [r for r in records if r["route"] is None]


def arrow_schema(with_embedding: bool = True):
    """One Arrow schema for every shard part and batch, so parts concatenate whatever fields a batch filled."""
    import pyarrow as pa

    fields = [("n", pa.int64())] + [
        (name, pa.float64() if name in ("rosiness", "rewrite_rosiness", "topic_similarity")
         else pa.int64() if name == "cluster" else pa.string()) for name in FIELDS
    ]
    if with_embedding:
        fields.append(("embedding", pa.list_(pa.float32())))
    return pa.schema(fields)


def to_table(records: list[dict], with_embedding: bool = True):
    """Records -> an Arrow table with ``arrow_schema`` (missing fields are null)."""
    import pyarrow as pa

    schema = arrow_schema(with_embedding)
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in records], schema=schema)
