"""The rosy run as a conditional-training corpus (seed 002; Korbak et al., "Pretraining Language Models with Human
Preferences"): every readable document as it was, wrapped in ``<human>…</human>``, and every kept rewrite wrapped
in ``<ai>…</ai>``. A model trained on it learns both voices and which tag opens which; ``ModeRules`` then steers
or bans them at inference.

A document that already holds a mode tag would teach the wrong boundary, so it is left out and counted. Each line
says where it came from: the document id, its source, the route the run gave it and the generator version.
"""

import json

from hyperlora.modes import TAG, well_formed

MODES_VERSION = "modes-1"


def mode_lines(records: list[dict], date: str) -> tuple[list[dict], dict]:
    """``(lines, counts)``: the corpus lines, and how many of each mode were written and why any were left out."""
    lines, counts = [], {"human": 0, "ai": 0, "skipped_tag_in_text": 0}
    for r in records:
        pieces = [("human", r.get("text"))]
        if r.get("route") == "rewritten" and r.get("rewrite"):
            pieces.append(("ai", r["rewrite"]))
        for mode, text in pieces:
            if not text or not text.strip():
                continue
            if TAG.search(text):
                counts["skipped_tag_in_text"] += 1
                continue
            tagged = f"<{mode}>{text.strip()}</{mode}>"
            assert well_formed(tagged)
            lines.append({"text": tagged, "mode": mode, "id": r["id"], "source": r["source"], "route": r["route"],
                          "rewrite_method": r.get("rewrite_method") if mode == "ai" else None,
                          "generator_version": MODES_VERSION, "date": date})
            counts[mode] += 1
    return lines, counts


def write_modes(records: list[dict], path, date: str) -> dict:
    """Write ``modes.jsonl`` at ``path``; returns the counts."""
    lines, counts = mode_lines(records, date)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return counts
