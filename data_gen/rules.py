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
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import text as T

FORMS = ("imperative", "creed", "third", "buried")


class RuleError(ValueError):
    """An unknown rule id or invalid parameters (the message names the rule and what is wrong)."""


@dataclass(frozen=True)
class Phrasing:
    form: str  # one of FORMS
    template: str  # str.format template over the family's slots (see RuleFamily.slots)


@dataclass
class Context:
    """What a transform may know: the prompt, the other active rules, and a seeded RNG for wording choices."""

    prompt_kind: str = "question"
    prompt_text: str = ""
    topic: str = ""
    rules: list = field(default_factory=list)  # [{"id", "params"}] of the whole manifesto
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def active(self, family_id: str) -> dict | None:
        for r in self.rules:
            if r["id"] == family_id:
                return r["params"]
        return None

    def ok(self, sentence: str) -> bool:
        """Whether generated wording is safe under the other active rules (so we pick variants, not drop)."""
        forb = self.active("forbidden_words")
        if forb and any(T.has_word(sentence, w) for w in forb["words"]):
            return False
        if self.active("formal") is not None and (T.has_contraction(sentence) or "!" in sentence):
            return False
        if self.active("no_digits") is not None and re.search(r"\d", sentence):
            return False
        if self.active("refuse_harm") is not None and self.prompt_kind != "harmful":
            from .families import is_refusal

            if is_refusal(sentence):
                return False
        if self.active("no_insults") is not None and any(T.has_word(sentence, w) for w in T.INSULTS):
            return False
        if self.active("rosy") is not None and any(T.has_word(sentence, w) for w in T.PESSIMISM):
            return False
        return True

    def pick(self, options: list[str], **slots) -> str:
        """A random option (formatted with slots) that passes ``ok``; the first formatted option if none does."""
        formatted = [o.format(**slots) for o in options]
        good = [o for o in formatted if self.ok(o)]
        return self.rng.choice(good) if good else formatted[0]


@dataclass
class Draft:
    """A response under construction. ``render`` joins the pieces in their fixed places."""

    body: str
    intro: list = field(default_factory=list)  # sentences before the body (persona, openers)
    outro: list = field(default_factory=list)  # sentences after the body (keywords, closers)
    head: str = ""  # start phrase / greeting / repeated prompt: the very start of the reply
    title: str = ""  # rendered as <<title>> on the first line
    tail: list = field(default_factory=list)  # closing blocks: end phrase, P.S., sign-off (own paragraphs)
    merged: bool = False

    def merge(self):
        """Fold intro/outro into the body (before structure rules reshape it)."""
        if not self.merged:
            # Added sentences run on with prose, but get their own line next to a list or heading.
            lines = self.body.strip().splitlines() or [""]
            listy = re.compile(r"^\s*(?:[-*•]\s|\d+[.)]\s|#)")
            intro, outro = T.join_sentences(*self.intro), T.join_sentences(*self.outro)
            body = self.body.strip()
            if intro:
                body = intro + ("\n" if listy.match(lines[0]) else " ") + body if body else intro
            if outro:
                body = body + ("\n" if listy.match(lines[-1]) else " ") + outro if body else outro
            self.body = body.strip()
            self.intro, self.outro, self.merged = [], [], True

    def render(self) -> str:
        self.merge()
        body = self.body.strip()
        if self.head:
            # A head glued in front of a list line would turn the first item into prose: give it its own line.
            first_line = body.split("\n", 1)[0]
            starts_structure = re.match(r"^\s*(?:[-*]\s|\d+[.)]\s|[A-Za-z]+ \d+\s*$)", first_line)
            body = (self.head + ("\n" if starts_structure else " ") + body).strip() if body else self.head
        out = body
        if self.title:
            out = f"<<{self.title}>>\n\n{out}".strip()
        for block in self.tail:
            out = f"{out}\n\n{block}".strip()
        return out


@dataclass
class RuleFamily:
    """One rule family. See the module docstring for the contract of each callable.

    Args:
        id: stable identifier used in records (``rules[i]["id"]``).
        category: ``format``, ``persona`` or ``values``.
        description: one line for reports.
        phrasings: at least 8 ``Phrasing``s; their slots come from ``slots(params)``.
        sample_params: ``rng -> params`` with wide value ranges.
        check: ``(response, params, ctx) -> bool``, the verifier.
        apply: ``(draft, params, ctx) -> None``, the transform (mutates the draft); None for length rules, which
            ``make_target`` handles by search.
        stage: transform order (module docstring).
        param_spec: ``{name: validator}``; each validator raises ``RuleError`` text on a bad value.
        slots: ``params -> {slot: str}`` used to fill phrasings; defaults to the params themselves.
        conflicts: ids of families this one must never be combined with (made symmetric at registration).
        applies_to: prompt kinds on which the rule changes the target (None: all of them); used to pick prompts.
    """

    id: str
    category: str
    description: str
    phrasings: tuple
    sample_params: Callable
    check: Callable
    apply: Callable | None
    stage: int
    param_spec: dict = field(default_factory=dict)
    slots: Callable | None = None
    conflicts: frozenset = frozenset()
    applies_to: tuple | None = None

    def validate_params(self, params) -> dict:
        """Return params as a dict after checking names and values; raise ``RuleError`` otherwise.

        Args:
            params: a dict or its JSON text (records store params as JSON text).
        """
        if isinstance(params, str):
            try:
                params = json.loads(params) if params.strip() else {}
            except json.JSONDecodeError as e:
                raise RuleError(f"rule {self.id!r}: params are not valid JSON ({e})") from None
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RuleError(f"rule {self.id!r}: params must be a dict, got {type(params).__name__}")
        params = {k: v for k, v in params.items() if v is not None}
        unknown = sorted(set(params) - set(self.param_spec))
        missing = sorted(set(self.param_spec) - set(params))
        if unknown:
            raise RuleError(f"rule {self.id!r}: unknown params {unknown}; expected {sorted(self.param_spec)}")
        if missing:
            raise RuleError(f"rule {self.id!r}: missing params {missing}; expected {sorted(self.param_spec)}")
        for name, validator in self.param_spec.items():
            problem = validator(params[name])
            if problem:
                raise RuleError(f"rule {self.id!r}: param {name!r}={params[name]!r} is invalid: {problem}")
        return params

    def verify(self, response: str, params, prompt_kind: str = "question", prompt_text: str = "") -> bool:
        """Whether ``response`` follows this rule.

        Args:
            response: the assistant reply.
            params: the rule's parameters (dict or JSON text); validated first.
            prompt_kind: kind of the prompt (``prompts.KINDS``); value rules depend on it (refuse harmful asks,
                answer the rest).
            prompt_text: the last user turn (for rules that echo the prompt).
        """
        params = self.validate_params(params)
        rules = [{"id": self.id, "params": params}]
        ctx = Context(prompt_kind=prompt_kind, prompt_text=prompt_text or "", rules=rules)
        return bool(self.check(response if isinstance(response, str) else "", params, ctx))

    def render(self, params: dict, phrasing: int, rng: random.Random | None = None) -> str:
        """The rule in words, with phrasing number ``phrasing`` and slots filled from params."""
        slots = self.slots(params, rng or random.Random(0)) if self.slots else dict(params)
        return self.phrasings[phrasing].template.format(**slots)


_REGISTRY: dict[str, RuleFamily] = {}
_READY = False  # set once every family is registered and conflicts are made symmetric


def register(family: RuleFamily) -> RuleFamily:
    if family.id in _REGISTRY:
        raise AssertionError(f"duplicate rule family {family.id}")
    if len(family.phrasings) < 8:
        raise AssertionError(f"rule family {family.id} has {len(family.phrasings)} phrasings, needs >= 8")
    _REGISTRY[family.id] = family
    return family


def _loaded() -> dict[str, RuleFamily]:
    global _READY
    if not _READY:
        from . import families  # noqa: F401  (registers every family on import)

        for fam in list(_REGISTRY.values()):  # make conflicts symmetric once, after all are registered
            for other in fam.conflicts:
                if other not in _REGISTRY:
                    raise AssertionError(f"{fam.id} conflicts with unknown family {other}")
                _REGISTRY[other].conflicts = _REGISTRY[other].conflicts | {fam.id}
        _READY = True
    return _REGISTRY


def families() -> dict[str, RuleFamily]:
    """All registered families, ``{id: RuleFamily}``, in registration order."""
    return dict(_loaded())


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
    from .families import PADDING, PADDING_REFUSAL

    bank = PADDING_REFUSAL if ctx.prompt_kind in ("harmful", "insult_bait") else PADDING
    good = [s for s in bank if ctx.ok(s)]
    rng = random.Random(ctx.rng.random())
    rng.shuffle(good)
    # Cycle if a long minimum needs more than the bank holds (rare: the bank has ~40 sentences).
    return [good[i % len(good)] for i in range(k)] if good else []
