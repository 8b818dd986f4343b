"""Readers: input files -> records. Bad input becomes a record dropped with a reason, never an exception.

Formats: ``jsonl`` (one JSON object per line with a ``text`` field, optional ``id`` and ``metadata``), ``parquet``
(a ``text`` column, optional ``id``; other columns become metadata), ``text`` (one document per line),
``fortune`` (documents separated by a line holding only ``%``, as the fortune program's data files are) and
``hf`` (a ``datasets.load_from_disk`` directory, or a ``DatasetDict``'s split as ``DIR:split``).
"""

import json
from collections.abc import Iterator
from pathlib import Path

from hyperlora.errors import HyperLoRAError

from .records import make_record

FORMATS = ("auto", "jsonl", "parquet", "text", "fortune", "hf")
_BY_SUFFIX = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".txt": "text"}


def _decode(raw: bytes):
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "not_utf8"


def read_jsonl(path: Path, source: str) -> Iterator[dict]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            line_id = f"{source}:{n}"
            if not raw.strip():
                continue  # blank lines between records are layout, not documents
            line, bad = _decode(raw)
            if bad:
                yield make_record(line_id, None, source, {"line": n}, bad=bad)
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                yield make_record(line_id, None, source, {"line": n}, bad="malformed_json")
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                yield make_record(line_id, None, source, {"line": n}, bad="missing_text")
                continue
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            yield make_record(obj.get("id", line_id), obj["text"], source, {"line": n, **meta})


def read_text(path: Path, source: str) -> Iterator[dict]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            line, bad = _decode(raw.rstrip(b"\r\n"))
            yield make_record(f"{source}:{n}", line, source, {"line": n}, bad=bad)


def read_fortune(path: Path, source: str) -> Iterator[dict]:
    with open(path, "rb") as f:
        chunks = f.read().split(b"\n%\n")
    for n, raw in enumerate(chunks):
        if n == len(chunks) - 1 and raw.strip() in (b"", b"%"):
            continue  # the file's closing separator
        text, bad = _decode(raw)
        yield make_record(f"{source}:{n}", text, source, {"entry": n}, bad=bad)


def _rows(columns: dict, source: str) -> Iterator[dict]:
    texts = columns.get("text")
    ids = columns.get("id")
    others = {k: v for k, v in columns.items() if k not in ("text", "id")}
    for n in range(len(texts)):
        text = texts[n]
        meta = {k: v[n] for k, v in others.items()}
        rid = ids[n] if ids is not None and ids[n] is not None else f"{source}:{n}"
        bad = None if isinstance(text, str) else "missing_text"
        yield make_record(rid, text if bad is None else None, source, meta, bad=bad)


def read_parquet(path: Path, source: str) -> Iterator[dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise HyperLoRAError(f"cannot read {path} as Parquet: {e}") from e
    if "text" not in table.column_names:
        raise HyperLoRAError(f"{path} has no 'text' column (columns: {', '.join(table.column_names)})")
    yield from _rows(table.to_pydict(), source)


def read_hf(spec: str, source: str) -> Iterator[dict]:
    from datasets import DatasetDict, load_from_disk

    path, _, split = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    try:
        ds = load_from_disk(path)
    except (FileNotFoundError, ValueError) as e:
        raise HyperLoRAError(f"cannot load {spec} as a saved Hugging Face dataset: {e}") from e
    if isinstance(ds, DatasetDict):
        if not split:
            raise HyperLoRAError(f"{path} holds splits {list(ds)}: name one as {path}:SPLIT")
        ds = ds[split]
    if "text" not in ds.column_names:
        raise HyperLoRAError(f"{spec} has no 'text' column (columns: {', '.join(ds.column_names)})")
    yield from _rows(ds.to_dict(), source)


_READERS = {"jsonl": read_jsonl, "text": read_text, "fortune": read_fortune, "parquet": read_parquet}


def detect_format(path: Path) -> str:
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        return "hf"
    return _BY_SUFFIX.get(path.suffix.lower(), "text")


def input_files(paths) -> list[Path]:
    """Expand the inputs: files as given, directories to their files (sorted, hidden files skipped)."""
    files = []
    for p in map(Path, paths):
        hf_split = ":" in p.name and not p.exists() and Path(str(p).rsplit(":", 1)[0]).is_dir()
        if hf_split or (p.is_dir() and detect_format(p) == "hf"):
            files.append(p)
        elif p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise HyperLoRAError(f"input not found: {p}")
    if not files:
        raise HyperLoRAError(f"no input files in {', '.join(map(str, paths))}")
    return files


def read_records(paths, fmt: str = "auto") -> Iterator[dict]:
    """Every record of every input, in order. ``source`` is the file's name (its stem for JSONL/Parquet)."""
    if fmt not in FORMATS:
        raise HyperLoRAError(f"unknown input format {fmt!r} (one of {', '.join(FORMATS)})")
    for path in input_files(paths):
        kind = fmt if fmt != "auto" else ("hf" if ":" in path.name and not path.exists() else detect_format(path))
        if kind == "hf":
            yield from read_hf(str(path), path.name)
        else:
            yield from _READERS[kind](path, path.stem if kind in ("jsonl", "parquet") else path.name)
