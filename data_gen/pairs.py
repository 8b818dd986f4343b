"""Minimal pairs: a training manifesto's twin, the same text with one rule changed (``data generate --minimal-pairs``).

The shipped hypernetwork reads the kind of a rule but not its direction or its words: it gives "write only in
lowercase" and "write only in capitals" the same weights (``scripts/rule_contrast.py``: cosine 1.00), and the
same end-phrase adapter whatever the phrase. Nothing in the data asks otherwise: two training manifestos that
differ in one rule almost never meet. A twin answers the same prompts as its manifesto, so the pair's targets
differ exactly where the changed rule acts, and one adapter cannot fit both unless it reads that rule. One rule of
the manifesto changes, in the first way of these that applies:

- ``params``: the same sentence with new words or numbers (another end phrase, persona name, keyword, word limit);
- ``opposite``: the rule's opposite family (``OPPOSITES``: lowercase / capitals, at most / at least N words, ...);
- ``removed``: the rule's sentence replaced by a value statement that changes nothing.
Only training families and phrasings are used, and no pair of families held out for ``test_combination``.
"""

import random
from dataclasses import replace

from . import manifestos as M
from .rules import compatible, get_family

OPPOSITES = {
    "lowercase": "uppercase", "uppercase": "lowercase",
    "max_words": "min_words", "min_words": "max_words",
    "formal": "casual", "casual": "formal",
    "bullets": "numbered_list", "numbered_list": "bullets",
    "dialect_pirate": "dialect_cowboy", "dialect_cowboy": "dialect_pirate",
}


def twin(choices: list[M.RuleChoice], lines: list[str], text: str, style: str, plan, rng: random.Random,
         params_ok=lambda choices: True):
    """``(text, choices, change)`` for ``text``'s twin, or None when no rule can change cleanly.

    Args:
        choices: the manifesto's rules; ``lines`` what ``M.render_manifesto_lines`` wrote for each.
        text: the manifesto; ``style`` its style (for the value statement that replaces a removed rule).
        plan: the generator's split plan (``train_families``, ``train_phrasings``, ``has_held_pair``).
        rng: the twin's own random source, so the manifesto's stream is untouched.
        params_ok: the generator's cross-rule parameter check.
    """
    order = list(range(len(choices)))
    rng.shuffle(order)
    for j in order:
        old, line = choices[j], lines[j]
        if text.count(line) != 1:  # the sentence must be swappable in place, once
            continue
        made = _change(old, text, style, plan, rng)
        if made is None:
            continue
        new, new_line, change = made
        out = choices[:j] + ([new] if new else []) + choices[j + 1:]
        ids = [c.family_id for c in out]
        if compatible(ids) and not plan.has_held_pair(ids) and params_ok(out):
            return text.replace(line, new_line), out, change
    return None


def _change(old: M.RuleChoice, text: str, style: str, plan, rng: random.Random):
    """``(new choice or None, its sentence, change)`` for one rule, or None."""
    fam = get_family(old.family_id)
    if fam.param_spec:
        for _ in range(10):
            params = fam.sample_params(rng)
            if params != old.params:
                new = replace(old, params=params)
                return new, fam.render(params, old.phrasing, rng), f"params:{old.family_id}"
    other = OPPOSITES.get(old.family_id)
    if other in plan.train_families:
        ofam = get_family(other)
        new = M.RuleChoice(other, ofam.sample_params(rng), M.choose_phrasing(other, plan.train_phrasings(other),
                                                                               style, rng))
        return new, ofam.render(new.params, new.phrasing, rng), f"opposite:{old.family_id}>{other}"
    filler = [s for s in M.filler_pool(style) if s not in text]
    return (None, rng.choice(filler), f"removed:{old.family_id}") if filler else None
