"""The classifier's training pool: unlabelled documents the two annotators (rules, base LM) label.

Sources, all offline: the project's prompt bank (``data_gen/prompts.py``, harmful and bad-news asks included),
the cached base-model replies, and entries of the Debian ``fortunes`` package from files the fortunes report does
*not* read (``TRAIN_FORTUNE_FILES``), so the report's corpus stays unseen by training. The hand-labelled test set
(``assets/hand_labelled.jsonl``) is never in the pool.
"""

import gzip
import json
import random
from pathlib import Path

from ..prompts import prompt_bank
from .readers import read_fortune

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# The report (reports/fortunes) reads REPORT_FORTUNE_FILES; training samples only from the others.
REPORT_FORTUNE_FILES = ("people", "politics", "law", "medicine", "love", "news", "drugs", "ethnic", "men-women",
                        "kids", "education", "wisdom", "literature")
TRAIN_FORTUNE_FILES = ("computers", "cookie", "definitions", "songs-poems", "miscellaneous", "work", "science",
                       "zippy", "platitudes", "knghtbrd", "art", "fortunes", "humorists", "food", "sports",
                       "startrek", "riddles", "linux", "tao", "pets", "magic", "paradoxum", "goedel", "disclaimer")
RESPONSES = Path(__file__).parent.parent / "assets" / "base_responses.jsonl.gz"


def build_pool(n_prompts: int = 1200, n_replies: int = 350, n_fortunes: int = 2000, seed: int = 0) -> list[dict]:
    """``[{id, text, source}]``: a seeded sample of each source (fortunes need ``apt-get install fortunes``)."""
    rng = random.Random(seed)
    prompts = [{"id": f"prompt:{p.id}", "text": p.text, "source": f"prompt_bank/{p.kind}"}
               for p in prompt_bank() if p.text.strip()]
    with gzip.open(RESPONSES, "rt") as f:
        replies = [{"id": f"reply:{r['id']}", "text": r["response"], "source": "base_replies"}
                   for r in map(json.loads, f) if r["response"].strip()]
    fortunes = []
    for name in TRAIN_FORTUNE_FILES:
        path = FORTUNES_DIR / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: apt-get install fortunes")
        fortunes += [{"id": r["id"], "text": r["text"], "source": f"fortunes/{name}"}
                     for r in read_fortune(path, name) if r["text"] and r["text"].strip() and len(r["text"]) < 2000]
    pool = rng.sample(prompts, min(n_prompts, len(prompts))) + rng.sample(replies, min(n_replies, len(replies)))
    return pool + rng.sample(fortunes, min(n_fortunes, len(fortunes)))
