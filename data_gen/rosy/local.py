"""Local executor: run the steps over fixed-size shards, one Parquet part and one completion marker per shard.

A shard is ``shard_size`` consecutive input records. A run that stops (Ctrl-C, a crash, a killed machine) leaves
the finished shards' parts and markers in the work directory; the next run with the same settings skips those
shards and so never writes a record twice. A part is renamed into place before its marker is written, so a marker
always means a complete part.
"""

import itertools
import json
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from .records import to_table
from .steps import run_steps


def prepare_work_dir(work: Path, settings: dict) -> int:
    """Create ``work`` or reuse it when its settings match; returns how many shards are already done."""
    manifest = work / "settings.json"
    if work.exists():
        if manifest.exists() and json.loads(manifest.read_text()) == settings:
            done = len(list(work.glob("shard-*.done")))
            if done:
                print(f"hyperlora: resuming: {done} finished shard(s) in {work}", file=sys.stderr)
            return done
        print(f"hyperlora: {work} was left by a run with other settings; starting over", file=sys.stderr)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    manifest.write_text(json.dumps(settings, indent=1))
    return 0


def run_local(records: Iterable[dict], steps, work: Path, shard_size: int = 1000, batch_size: int = 64,
              timings: dict | None = None, progress: bool = True) -> list[Path]:
    """Run ``steps`` over ``records`` shard by shard; returns the part files in input order.

    Args:
        records: the input records (an iterator is fine: it is read once, a shard at a time).
        steps: callables batch -> batch (``steps.py``).
        work: the work directory (see ``prepare_work_dir``).
        shard_size: records per shard (and per completion marker).
        batch_size: records per call of the steps.
        timings: filled with seconds per step name.
    """
    parts = []
    bar = tqdm(desc="rosy", unit="doc", disable=not progress, file=sys.stderr)
    it = iter(records)
    for index in itertools.count():
        shard = list(itertools.islice(it, shard_size))
        if not shard:
            break
        part, marker = work / f"shard-{index:05d}.parquet", work / f"shard-{index:05d}.done"
        if not marker.exists():
            out = []
            for start in range(0, len(shard), batch_size):
                out += run_steps(steps, shard[start : start + batch_size], timings)
                bar.update(min(batch_size, len(shard) - start))
            tmp = part.with_suffix(".parquet.tmp")
            pq.write_table(to_table(out), tmp)
            os.replace(tmp, part)
            marker.touch()
        else:
            bar.update(len(shard))
        parts.append(part)
    bar.close()
    return parts
