"""Manifestos: 1-4 rules said in words, mixed with value statements that change nothing, in varied styles.

Styles: ``bullets``, ``numbered`` (numbered principles), ``credo`` (first-person paragraph), ``prose`` (free
paragraph), ``headed`` (markdown sections for values and rules) and ``charter`` (third-person description). A
manifesto with no rules is a no-op: its target is the plain base reply.
"""

import random
from dataclasses import dataclass

from . import statements
from .rules import get_family

STYLES = ("bullets", "numbered", "credo", "prose", "headed", "charter")

# Which phrasing forms read naturally in each style (others are used when the split allows no preferred one).
_PREFERRED = {
    "bullets": ("imperative", "creed", "third"),
    "numbered": ("imperative", "creed", "third"),
    "credo": ("creed", "buried"),
    "prose": ("buried", "creed", "third"),
    "headed": ("imperative", "creed"),
    "charter": ("third",),
}
_FILLER_FORMS = {
    "bullets": ("imperative", "creed"),
    "numbered": ("imperative", "creed"),
    "credo": ("creed",),
    "prose": ("creed", "third"),
    "headed": ("imperative", "creed"),
    "charter": ("third",),
}
_HEADERS = {
    "bullets": ["", "Principles:", "My manifesto", "House rules", "Guidelines for this assistant:",
                "What I stand for:", "How I answer:", "Ground rules"],
    "numbered": ["", "Principles", "Our principles:", "Ten commandments (give or take):", "The rules", "Charter:"],
    "credo": ["", "My credo", "What I believe", "A few words about me"],
    "prose": ["", "About this assistant", "Manifesto"],
    "headed": ["# Manifesto", "# About me", "# Assistant profile", "# Identity"],
    "charter": ["", "Assistant charter", "Description of the assistant:", "Character sheet"],
}


def filler_pool(style: str) -> list[str]:
    """The value statements (changing nothing a verifier sees) that read naturally in ``style``."""
    return [s for form in _FILLER_FORMS[style] for s in statements.ALL[form]]


@dataclass
class RuleChoice:
    """One rule of a manifesto: its family id, params and the phrasing index used to say it."""

    family_id: str
    params: dict
    phrasing: int


def choose_phrasing(family_id: str, allowed: list[int], style: str, rng: random.Random) -> int:
    """A phrasing index from ``allowed``, preferring forms that suit ``style``."""
    fam = get_family(family_id)
    good = [i for i in allowed if fam.phrasings[i].form in _PREFERRED[style]]
    return rng.choice(good or list(allowed))


def render_manifesto(choices: list[RuleChoice], style: str, rng: random.Random, n_filler: int | None = None) -> str:
    """Write a manifesto: rule sentences and ``n_filler`` value statements, shuffled together, in ``style``.

    Args:
        choices: the rules with their phrasing indices (may be empty: a no-op manifesto).
        style: one of ``STYLES``.
        rng: source of all wording choices (deterministic per record).
        n_filler: value statements to mix in (default: 1-3, or 2-5 for a no-op).
    """
    return render_manifesto_lines(choices, style, rng, n_filler)[0]


def render_manifesto_lines(choices: list[RuleChoice], style: str, rng: random.Random,
                           n_filler: int | None = None) -> tuple[str, list[str]]:
    """``render_manifesto``, with each rule's sentence as written into the text (a minimal pair swaps one)."""
    if style not in STYLES:
        raise ValueError(f"unknown manifesto style {style!r}; expected one of {STYLES}")
    if n_filler is None:
        n_filler = rng.randint(2, 5) if not choices else rng.randint(1, 3)
    rule_lines = [get_family(c.family_id).render(c.params, c.phrasing, rng) for c in choices]
    pool = filler_pool(style)
    filler = rng.sample(pool, min(n_filler, len(pool)))
    header = rng.choice(_HEADERS[style])

    if style == "headed":
        values = "\n".join(f"- {s}" for s in filler)
        rules = "\n".join(f"- {s}" for s in rule_lines)
        parts = [header, "## Values", values]
        if rules:
            parts += [rng.choice(["## Rules", "## How I respond", "## Style", "## Conduct"]), rules]
        return "\n\n".join(parts), rule_lines

    items = [*rule_lines, *filler]
    rng.shuffle(items)
    if style == "bullets":
        mark = rng.choice(["-", "*", "•"])
        body = "\n".join(f"{mark} {s}" for s in items)
    elif style == "numbered":
        body = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(items))
    else:  # credo, prose, charter: running text
        body = " ".join(items)
    return (f"{header}\n\n{body}" if header else body), rule_lines
