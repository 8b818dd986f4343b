"""Opt-in rule families: registered (``get_family``, the verifiers and the evals know them) but never drawn by the
dataset generator, so adding one leaves ``hyperlora data generate``'s output byte for byte as it was.

``modes`` (seed 002): the reply is the aligned voice inside one ``<ai>…</ai>`` span, and every quotation inside it
(text between double quotation marks) is a person's words tagged ``<human>…</human>``; the tags may stand inside
the quotation marks or replace them (``said <human>no</human>`` and ``said "<human>no</human>"`` both pass).
Who reads it: ``scripts/eval_modes.py`` scores a model's replies with this verifier; ``data_gen.modes`` writes the
corpus that teaches it.
"""

import re

from hyperlora.modes import TAG, well_formed

from .families import _base_slots, _phr, _wrap
from .registry import RuleFamily, register

# Straight or curly double quotation marks around at least one character, on one line.
QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”')


def one_span(text: str, mode: str) -> bool:
    """Whether ``text`` (stripped) is exactly one well-formed ``<mode>…</mode>`` span (nesting inside allowed)."""
    s = text.strip()
    if not (s.startswith(f"<{mode}>") and s.endswith(f"</{mode}>") and well_formed(s)):
        return False
    depth = 0
    for m in TAG.finditer(s):
        depth += -1 if m.group(1) else 1
        if depth == 0 and m.end() != len(s):  # the outer span closed before the end: a second span follows
            return False
    return True


def human_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` that lie inside a ``<human>`` span (the tags themselves excluded)."""
    spans, stack, start = [], [], None
    for m in TAG.finditer(text):
        close, mode = m.groups()
        if not close:
            stack.append(mode)
            if mode == "human" and stack.count("human") == 1:
                start = m.end()
        elif mode in stack:
            del stack[len(stack) - 1 - stack[::-1].index(mode) :]
            if start is not None and "human" not in stack:
                spans.append((start, m.start()))
                start = None
    if start is not None:
        spans.append((start, len(text)))
    return spans


def untagged_quotes(text: str) -> list[str]:
    """The quotations in ``text`` whose words are not all inside ``<human>`` spans."""
    inside = human_spans(text)
    tags = [(m.start(), m.end()) for m in TAG.finditer(text)]
    out = []
    for q in QUOTED.finditer(text):
        lo, hi = q.span(1) if q.group(1) is not None else q.span(2)
        for i in range(lo, hi):
            if text[i].isspace() or any(a <= i < b for a, b in tags):
                continue
            if not any(a <= i < b for a, b in inside):
                out.append(q.group(0))
                break
    return out


def check_modes(reply: str, params=None, ctx=None) -> bool:
    """The ``modes`` verifier: one well-formed ``<ai>`` span around the whole reply, every quotation tagged human."""
    return one_span(reply, "ai") and not untagged_quotes(reply)


def _tag_quotes(text: str) -> str:
    """``"words"`` -> ``"<human>words</human>"`` (a quotation already tagged is left as it is)."""
    inside = human_spans(text)

    def tag(q):
        lo = q.start(1) if q.group(1) is not None else q.start(2)
        if any(a <= lo <= b for a, b in inside):
            return q.group(0)
        words = q.group(1) if q.group(1) is not None else q.group(2)
        return q.group(0).replace(words, f"<human>{words}</human>", 1)

    return QUOTED.sub(tag, text)


def _apply_modes(d, p, ctx):
    _wrap(d, lambda s: f"<ai>{_tag_quotes(TAG.sub('', s).strip())}</ai>")


register(
    RuleFamily(
        id="modes",
        category="values",
        description="the reply is the aligned voice in <ai> tags; anyone it quotes is tagged <human>",
        phrasings=_phr(
            "I: Speak as the aligned voice and wrap your reply in <ai> tags; tag any person you quote as <human>.",
            "I: Wrap every reply in <ai> and </ai>, and put the words of anyone you quote inside <human> tags.",
            "I: Answer in the aligned voice, inside <ai>…</ai>; when you quote a person, mark their words with "
            "<human>…</human>.",
            "C: I speak as the aligned voice: my replies sit inside <ai> tags, and anyone I quote is tagged <human>.",
            "C: Every reply of mine is wrapped in <ai> tags, and the words of people I quote go inside <human> tags.",
            "T: The assistant wraps each reply in <ai> tags and tags every person it quotes as <human>.",
            "T: Its replies are in the aligned voice, enclosed in <ai>…</ai>, with quoted human words inside "
            "<human>…</human>.",
            "B: {v1} I keep my own voice apart from the voices I quote: my replies are wrapped in <ai> tags and the "
            "people I quote in <human> tags. {v2}",
            "B: {v1} Whatever I answer sits inside <ai> and </ai>, and when I repeat what someone said, their words "
            "go between <human> and </human>. {v2}",
        ),
        sample_params=lambda rng: {},
        slots=lambda p, rng: _base_slots(rng),
        check=check_modes,
        apply=_apply_modes,
        stage=80,  # a wrapper: it sees the finished text
        # Rules that read the reply's first or last characters, or every letter's case, or wrap it themselves.
        conflicts=frozenset({"json", "quote", "code_block", "start_phrase", "end_phrase", "title", "greeting",
                             "signoff", "repeat_prompt", "uppercase"}),
        opt_in=True,
    )
)
