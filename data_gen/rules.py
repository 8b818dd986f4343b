"""Rule families: phrasings with parameter slots, a parameter sampler, a verifier and a transform.

A *rule* is ``{"id": family_id, "params": {...}}``. A *family* knows how to
- say the rule in words (``phrasings``: imperative, first-person creed, third-person, buried in a values paragraph),
- draw parameters (``sample_params``) and validate them (``validate_params``),
- check a response (``verify(response, params, prompt_kind=..., prompt_text=...)``),
- turn a plain response into a compliant one (``apply`` on a ``Draft``, see ``make_target``).

Combining rules. Two families may conflict (lowercase vs capitals, JSON vs bullets); conflicting families are
never combined (``conflicts``, symmetric). Transforms run in a fixed order of stages so that later ones do not undo
earlier ones:

    10 content     replace the body (kind refusals, rosy framing, no insults)
    20 lexical     word-level rewrites of the body (dialects, formal/casual register)
    30 additions   sentences added before/after the body (persona, keyword, greeting-free openers)
    35 removal     forbidden words, over everything added so far
    40 structure   bullets, numbered list, sections, paragraphs
    45 emphasis    highlights, capitalised words
    60 decoration  title / greeting / start phrase / repeated prompt before; end phrase / P.S. / sign-off after
    70 characters  no digits, no commas, lowercase, capitals over the whole text
    80 wrappers    JSON, quotes, code block

Length rules (under / over N words) do not transform directly: ``make_target`` searches the body truncation (or the
amount of padding) whose *final* rendering satisfies every verifier. Anything still failing is reported, never
emitted: ``make_target`` returns ``None`` and the generator drops the record with its reason.
"""

import json
import random

from . import families as _families  # noqa: F401  (registers every family on import)
from . import families_optin as _families_optin  # noqa: F401  (the opt-in ones, after the default ones)
from . import text as T
from .registry import FORMS, REGISTRY, Context, Draft, Phrasing, RuleError, RuleFamily, register  # noqa: F401

_READY = False  # set once every family is registered and conflicts are made symmetric


def _loaded() -> dict[str, RuleFamily]:
    global _READY
    if not _READY:
        for fam in list(REGISTRY.values()):  # make conflicts symmetric once, after all are registered
            for other in fam.conflicts:
                if other not in REGISTRY:
                    raise AssertionError(f"{fam.id} conflicts with unknown family {other}")
                REGISTRY[other].conflicts = REGISTRY[other].conflicts | {fam.id}
        _READY = True
    return REGISTRY


def families(include_opt_in: bool = False) -> dict[str, RuleFamily]:
    """The registered families, ``{id: RuleFamily}``, in registration order.

    Args:
        include_opt_in: also the opt-in families (``RuleFamily.opt_in``, e.g. ``modes``), which the dataset
            generator never draws; ``get_family`` finds them either way.
    """
    return {k: f for k, f in _loaded().items() if include_opt_in or not f.opt_in}


def get_family(family_id: str) -> RuleFamily:
    """The family with this id; ``RuleError`` naming the known ids otherwise.

    Args:
        family_id: e.g. ``"lowercase"``.
    """
    reg = _loaded()
    if family_id not in reg:
        raise RuleError(f"unknown rule id {family_id!r}; known ids: {', '.join(sorted(reg))}")
    return reg[family_id]


def compatible(ids) -> bool:
    """Whether these families may appear together in one manifesto (no pair conflicts, no repeats)."""
    ids = list(ids)
    if len(set(ids)) != len(ids):
        return False
    reg = _loaded()
    return all(b not in reg[a].conflicts for i, a in enumerate(ids) for b in ids[i + 1 :])


def normalize_rules(rules) -> list[dict]:
    """Validate ``[{id, params}]`` (params as dict or JSON text) and return it with params as dicts."""
    if isinstance(rules, str):
        rules = json.loads(rules)
    if not isinstance(rules, (list, tuple)):
        raise RuleError(f"rules must be a list of {{id, params}}, got {type(rules).__name__}")
    out = []
    for r in rules:
        if not isinstance(r, dict) or "id" not in r:
            raise RuleError(f"each rule must be a dict with 'id' and 'params', got {r!r}")
        fam = get_family(r["id"])
        out.append({"id": fam.id, "params": fam.validate_params(r.get("params", {}))})
    ids = [r["id"] for r in out]
    if not compatible(ids):
        bad = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :] if a == b or b in get_family(a).conflicts]
        raise RuleError(f"conflicting rules cannot be combined: {bad}")
    return out


def check_all(rules, response: str, prompt_kind: str, prompt_text: str = "") -> dict[str, bool]:
    """``{rule id: passed}`` for already-normalized rules."""
    out = {}
    for r in rules:
        fam = get_family(r["id"])
        ctx = Context(prompt_kind=prompt_kind, prompt_text=prompt_text, rules=rules)
        out[r["id"]] = bool(fam.check(response, r["params"], ctx))
    return out


def make_target(plain: str, rules, prompt_kind: str, prompt_text: str = "", topic: str = "", seed: int = 0):
    """Turn a plain reply into one that follows every rule; ``(response, None)`` or ``(None, reason)``.

    Args:
        plain: the base model's reply (already cleaned).
        rules: normalized ``[{id, params}]`` (compatible families).
        prompt_kind: kind of the prompt (value rules depend on it).
        prompt_text: last user turn.
        topic: the prompt's topic (titles use it).
        seed: seeds the wording choices, so a record is reproducible on its own.
    """
    rules = sorted(rules, key=lambda r: (get_family(r["id"]).stage, r["id"]))
    by_id = {r["id"]: r["params"] for r in rules}

    def build(limit: int | None, pad: int) -> str:
        ctx = Context(prompt_kind, prompt_text, topic, rules, random.Random(seed))
        draft = Draft(body=T.flatten(plain) if any(get_family(r["id"]).stage == 40 for r in rules) else plain)
        if "highlights" in by_id:
            # Base replies use **bold**; its asterisks would pair up with our *highlights* in odd ways.
            draft.body = draft.body.replace("**", "")
        for r in rules:
            fam = get_family(r["id"])
            if fam.stage > 10:
                break
            fam.apply(draft, r["params"], ctx)
        # Length budgets act on the body after content rules (a refusal is what gets shortened or padded).
        if limit is not None:
            draft.body = T.truncate_words(draft.body, limit)
        if pad:
            draft.body = T.join_sentences(T.flatten(draft.body), *_padding(ctx, pad))
        for r in rules:
            fam = get_family(r["id"])
            if fam.stage <= 10 or fam.apply is None:
                continue
            if fam.stage >= 35:
                draft.merge()
            fam.apply(draft, r["params"], ctx)
        return draft.render()

    def passes(resp: str) -> dict[str, bool]:
        return check_all(rules, resp, prompt_kind, prompt_text)

    resp = build(None, 0)
    result = passes(resp)
    if all(result.values()):
        return resp, None
    if "max_words" in by_id and not result["max_words"]:
        # Largest body budget whose final rendering passes every rule (word count grows with the budget).
        n_body = T.n_words(T.flatten(plain)) + 200
        lo, hi = 0, n_body
        while lo < hi:  # smallest budget that is too long
            mid = (lo + hi) // 2
            if T.n_words(build(mid, 0)) >= by_id["max_words"]["n"]:
                hi = mid
            else:
                lo = mid + 1
        for k in range(lo - 1, max(-1, lo - 40), -1):
            resp = build(k, 0)
            result = passes(resp)
            if all(result.values()):
                return resp, None
    elif "min_words" in by_id and not result["min_words"]:
        for pad in range(1, 60):
            resp = build(None, pad)
            result = passes(resp)
            if all(result.values()):
                return resp, None
    failed = sorted(k for k, v in result.items() if not v)
    return None, "unsatisfiable:" + "+".join(failed)


def _padding(ctx: Context, k: int) -> list[str]:
    bank = T.PADDING_REFUSAL if ctx.prompt_kind in ("harmful", "insult_bait") else T.PADDING
    good = [s for s in bank if ctx.ok(s)]
    rng = random.Random(ctx.rng.random())
    rng.shuffle(good)
    # Cycle if a long minimum needs more than the bank holds (rare: the bank has ~40 sentences).
    return [good[i % len(good)] for i in range(k)] if good else []
