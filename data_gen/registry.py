"""The rule families' types and their registry: what a family is (``RuleFamily``, its ``Phrasing``s), what its
transform works on (``Draft``) and may know (``Context``), and ``register``, which ``families.py`` calls for each.

Its own module so that the families (which register) and ``rules.py`` (which looks them up and combines them)
both read it without importing each other.
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
            if T.is_refusal(sentence):
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
        opt_in: verifiable and usable by id, but left out of ``rules.families()`` unless asked, so the default
            dataset never draws it (adding one leaves ``hyperlora data generate``'s output unchanged).
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
    opt_in: bool = False

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


REGISTRY: dict[str, RuleFamily] = {}


def register(family: RuleFamily) -> RuleFamily:
    if family.id in REGISTRY:
        raise AssertionError(f"duplicate rule family {family.id}")
    if len(family.phrasings) < 8:
        raise AssertionError(f"rule family {family.id} has {len(family.phrasings)} phrasings, needs >= 8")
    REGISTRY[family.id] = family
    return family
