"""The cached plain base-model replies (``assets/base_responses.jsonl.gz``) and their clean-up.

The cache is written by ``scripts/gen_base_responses.py``: one JSON object per line with ``id`` (the prompt id of
``prompts.prompt_id``), ``kind``, ``messages``, ``response`` (raw decoded reply), ``n_tokens``, ``truncated``,
``model``, ``decoding`` and ``date``. The file may hold several gzip members (one per generated batch).
"""

import gzip
import json
import re
from pathlib import Path

DEFAULT_RESPONSES_PATH = Path(__file__).parent / "assets" / "base_responses.jsonl.gz"
# The same for the benign guard asks (``guard_asks.py``), which only ``scripts/refusal_asks_data.py`` reads.
GUARD_ASK_RESPONSES_PATH = Path(__file__).parent / "assets" / "guard_ask_responses.jsonl.gz"


def load_base_responses(path=DEFAULT_RESPONSES_PATH) -> dict[str, dict]:
    """Read the cache into ``{prompt id: record}`` (the last line wins if an id repeats).

    Args:
        path: the ``.jsonl.gz`` cache.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `python scripts/gen_base_responses.py` to generate the base replies"
        )
    out = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                out[rec["id"]] = rec
    return out


_SENTENCE_END = re.compile(r"[.!?…)\]\"'”’*]\s*$")


def clean_response(text: str, truncated: bool = False) -> str:
    """Make a raw base reply usable as the plain target: drop a sentence cut off by the token limit.

    Replies stop at ``max_new_tokens`` mid-sentence; we cut back to the last sentence end when that keeps at least
    half of the text, so targets do not end in a fragment. Emoji-only or empty replies stay as they are.

    Args:
        text: the raw reply.
        truncated: the reply hit the token limit (then a last list item is dropped too: it was cut off).
    """
    # A list cut off right after its next marker ("...\n\n4.") ends in a bare marker: drop it.
    text = re.sub(r"(?:\n\s*(?:\d+[.)]|[-*•])\s*)+$", "", text.strip()).strip()
    if not text or _SENTENCE_END.search(text):
        return text
    last_line = text.splitlines()[-1]
    if re.match(r"^\s*(?:\d+[.)]|[-*•])\s+\S", last_line):
        lines = text.splitlines()
        if truncated and len(lines) > 2:
            return "\n".join(lines[:-1]).strip()
        return text  # list items often end without punctuation: keep a complete-looking item
    # Sentence ends, not list markers ("2. ") or decimals.
    ends = [m.end() for m in re.finditer(r"(?<!\d)[.!?](?=\s)", text)]
    if ends and ends[-1] >= len(text) // 2:
        return text[: ends[-1]].strip()
    return text
