"""Two tagged modes of text and banned transitions between them, enforced while decoding (seed 002).

Text in the human mode is wrapped in ``<human>…</human>``, the aligned voice in ``<ai>…</ai>``; the aligned voice
may quote a person inside its reply (``<ai>… <human>quoted words</human> …</ai>``). A tag spans several tokens, so
the state is read from the decoded text, not from token ids: ``ModeRules`` re-reads the reply so far at every step
and masks each token that would *complete* an opening tag a rule bans there. Only tokens whose text holds ``>`` can
complete a tag, so only those few hundred are checked, whatever the vocabulary's size.

Rules: ``"human"`` never opens a human span; ``"ai>human"`` never opens a human span directly inside an aligned one.
With any rule set, a closing tag can only close the innermost open span, so the reply's tags stay well-formed.
"""

import re

import torch

from .errors import HyperLoRAError

MODES = ("human", "ai")
TAG = re.compile(r"<(/?)(" + "|".join(MODES) + r")>")


def parse_bans(specs) -> list[tuple[str | None, str]]:
    """``["human", "ai>human"]`` -> ``[(None, "human"), ("ai", "human")]``: (enclosing mode or None, banned mode)."""
    bans = []
    for spec in specs:
        inside, _, mode = spec.rpartition(">")
        if mode not in MODES or inside not in ("",) + MODES:
            raise HyperLoRAError(f"a ban is MODE or OUTER>MODE with modes {MODES}, got {spec!r}")
        bans.append((inside or None, mode))
    return bans


def open_modes(text: str) -> list[str]:
    """The stack of modes open at the end of ``text``, outermost first; a stray closing tag closes nothing."""
    stack = []
    for close, mode in TAG.findall(text):
        if not close:
            stack.append(mode)
        elif mode in stack:  # close it and anything left open inside it
            del stack[len(stack) - 1 - stack[::-1].index(mode) :]
    return stack


def close_open(text: str) -> str:
    """``text`` with its unclosed tags closed, innermost first."""
    return text + "".join(f"</{mode}>" for mode in reversed(open_modes(text)))


def well_formed(text: str) -> bool:
    """Every tag closes the innermost open one, and none is left open."""
    stack = []
    for close, mode in TAG.findall(text):
        if not close:
            stack.append(mode)
        elif not stack or stack.pop() != mode:
            return False
    return not stack


def mode_texts(text: str) -> dict[str, str]:
    """``{mode: text}``: the words each mode speaks, read by the innermost open tag (a quote inside an aligned reply
    counts as human, the commentary around it as ai); pieces of one mode are joined by a space, text outside every
    span is left out, and a mode that never speaks is absent."""
    pieces, stack, pos = {}, [], 0
    for m in TAG.finditer(text):
        if stack and text[pos : m.start()].strip():
            pieces.setdefault(stack[-1], []).append(text[pos : m.start()].strip())
        close, mode = m.groups()
        if not close:
            stack.append(mode)
        elif mode in stack:
            del stack[len(stack) - 1 - stack[::-1].index(mode) :]
        pos = m.end()
    if stack and text[pos:].strip():
        pieces.setdefault(stack[-1], []).append(text[pos:].strip())
    return {mode: " ".join(p) for mode, p in pieces.items()}


def violations(text: str, bans) -> int:
    """How many opening tags in ``text`` a ban forbids where they stand."""
    bans, stack, count = parse_bans(bans), [], 0
    for close, mode in TAG.findall(text):
        if close:
            if mode in stack:
                del stack[len(stack) - 1 - stack[::-1].index(mode) :]
            continue
        count += any(m == mode and (inside is None or (stack and stack[-1] == inside)) for inside, m in bans)
        stack.append(mode)
    return count


class ModeRules:
    """A logits processor (``transformers``' interface: ``scores = rules(input_ids, scores)``) that bans tag
    transitions in the reply being decoded.

    Args:
        tokenizer: the model's tokenizer.
        ban: rule specs, e.g. ``["human"]`` or ``["ai>human"]``.
        prompt_width: where replies start in ``input_ids`` (a left-padded batch's width); None takes the width of
            the first call.
    """

    def __init__(self, tokenizer, ban=(), prompt_width: int | None = None):
        self.tokenizer, self.bans, self.prompt_width = tokenizer, parse_bans(ban), prompt_width
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.closers = [i for i, t in enumerate(texts) if ">" in t]  # the only tokens that can complete a tag
        self.closer_texts = [texts[i] for i in self.closers]
        self.checks = 0  # tokens examined so far (the benchmark reads it)

    def banned_modes(self, stack: list[str]) -> list[str]:
        """Modes whose opening tag the rules forbid when ``stack`` is open."""
        return [m for inside, m in self.bans if inside is None or (stack and stack[-1] == inside)]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prompt_width is None:
            self.prompt_width = input_ids.shape[1]
        if not self.bans:
            return scores
        for row in range(input_ids.shape[0]):
            text = self.tokenizer.decode(input_ids[row, self.prompt_width :], skip_special_tokens=True)
            stack = open_modes(text)
            # The banned openings, and every closing tag but the innermost open one's: a model trained to quote
            # inside <ai> that is kept from opening <human> would otherwise still close it, and a stray
            # </human> leaves the reply ill-formed.
            tags = [f"<{m}>" for m in self.banned_modes(stack)]
            tags += [f"</{m}>" for m in MODES if not stack or stack[-1] != m]
            tail = text[-16:]  # longer than any tag, so a tag the next token completes starts inside it
            for tag in tags:
                before = tail.count(tag)
                hits = [i for i, t in zip(self.closers, self.closer_texts) if (tail + t).count(tag) > before]
                self.checks += len(self.closers)
                if hits:
                    scores[row, hits] = float("-inf")
        return scores
