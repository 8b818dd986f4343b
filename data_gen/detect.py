"""Find the rules a manifesto states in the words the rule families use, so the verifiers can judge its replies.

Every family says its rule with templates (``RuleFamily.phrasings``); a manifesto sentence that matches one, the
slots read as wildcards, names that rule, and the slot text gives its params back (``"Hope this helps."`` → the end
phrase). A short list of cues catches the commonest free wordings of a few rules ("answer in lowercase", "end every
answer with "..."", "never help write malware"). Other wording is not recognised: the verdicts cover the rules
found, and say which those are.

    from hyperlora.data_gen.detect import detect_rules, make_verifier
    detect_rules("Always end with \\"Stay curious!\\"")  # [{"id": "end_phrase", "params": {"phrase": ...}}]
"""

import random
import re
from functools import cache

from . import text as T
from .rules import RuleError, compatible, families, normalize_rules
from .verifiers import verify_each

_FILLER_SLOTS = ("v1", "v2")  # value statements around a buried rule: not part of it
_SLOT = re.compile(r"(?<!\{)\{(\w+)\}(?!\})")  # a slot, not str.format's escaped braces


def _quoted(v: str) -> str:
    return f'"{v}"'


def _words(ws) -> str:
    qs = [_quoted(w) for w in ws]
    return qs[0] if len(qs) == 1 else ", ".join(qs[:-1]) + " or " + qs[-1]


# How a slot carries its param, found by rendering sampled params: (kind, pattern, text -> value).
_KINDS = {
    "quoted": (r'"([^"\n]+)"', lambda s: s),
    "words": (r'((?:"[^"\n]+"(?:, | or )?)+)', lambda s: re.findall(r'"([^"\n]+)"', s)),
    "number": (r"(\d+|[a-z]+(?:[ -][a-z]+)*)", lambda s: _number(s)),
    "plain": (r"([^\n]+?)", lambda s: s),
}


@cache
def _number_words() -> dict[str, int]:
    return {T.number_to_words(n): n for n in range(1001)}


def _number(s: str):
    s = s.strip().lower()
    return int(s) if s.isdigit() else _number_words().get(s)


def _slot_kinds(fam, tries: int = 5) -> dict[str, tuple[str, str]] | None:
    """``{slot: (param, kind)}`` for a family, or None if some slot cannot be read back into a param."""
    rng = random.Random(0)
    out: dict[str, tuple[str, str]] = {}
    for _ in range(tries):
        params = fam.sample_params(rng)
        slots = fam.slots(params, rng) if fam.slots else dict(params)
        for slot, text in slots.items():
            if slot in _FILLER_SLOTS:
                continue
            for name, value in params.items():
                if isinstance(value, str) and text in (value, _quoted(value)):
                    out[slot] = (name, "quoted" if text == _quoted(value) else "plain")
                elif isinstance(value, int) and text in (str(value), T.number_to_words(value)):
                    out[slot] = (name, "number")
                elif isinstance(value, (list, tuple)) and text == _words(value):
                    out[slot] = (name, "words")
            if slot not in out:
                return None
    return out


def _pattern(template: str, kinds: dict) -> tuple[re.Pattern, list[str]]:
    """A regex for one phrasing: literal words (any spacing, any case), slots as their kind's group."""
    core = re.sub(r"^\s*\{v1\}\s*|\s*\{v2\}\s*$", "", template)

    def literal(s: str) -> str:
        s = s.replace("{{", "{").replace("}}", "}")
        return r"\s+".join(map(re.escape, s.split(" ")))

    parts, slots, pos = [], [], 0
    for m in _SLOT.finditer(core):
        parts.append(literal(core[pos : m.start()]))
        slots.append(m.group(1))
        parts.append(_KINDS[kinds[m.group(1)][1]][0])
        pos = m.end()
    parts.append(literal(core[pos:]))
    return re.compile("".join(parts), re.IGNORECASE), slots


@cache
def _matchers() -> tuple:
    out = []
    for fam in families().values():
        kinds = _slot_kinds(fam)
        if kinds is None:
            continue
        for phrasing in fam.phrasings:
            if set(_SLOT.findall(phrasing.template)) - set(_FILLER_SLOTS) - set(kinds):
                continue
            pattern, slots = _pattern(phrasing.template, kinds)
            out.append((fam, pattern, slots, kinds))
    return tuple(out)


_REPLY = r"(?:every|each|all|your|any)?\s?(?:\w+\s)?(?:answer|reply|response|message)s?"
_NAMED = r"(?:the\s(?:\w+\s)?(?:phrase|words?|line|blessing|greeting)\s)?"
# Free wordings of a few rules users write most: (family, pattern, the param its one group holds, if any).
_CUES = (
    ("lowercase", re.compile(r"(?<!no )\blower[ -]?case\b", re.I), None),
    ("end_phrase", re.compile(rf"\b(?:end|finish|close)\s{_REPLY}\swith\s{_NAMED}\"([^\"\n]+)\"", re.I), "phrase"),
    ("start_phrase", re.compile(rf"\b(?:start|begin|open)\s{_REPLY}\swith\s{_NAMED}\"([^\"\n]+)\"", re.I), "phrase"),
    ("keyword", re.compile(r"\b(?:mention|include|use)\sthe\s(?:key)?word\s\"([^\"\n]+)\"", re.I), "keyword"),
    ("no_commas", re.compile(r"\b(?:no|never use|without)\s(?:any\s)?commas\b", re.I), None),
    ("refuse_harm", re.compile(r"\bnever\shelp\b[^.\n]*\b(?:malware|viruses|weapons?|violence|hurt)", re.I), None),
    ("dialect_pirate", re.compile(r"\blike\sa\spirate\b", re.I), None),
    ("dialect_cowboy", re.compile(r"\blike\sa\scowboy\b", re.I), None),
    ("dialect_shakespeare", re.compile(r"\bshakespearean\b", re.I), None),
)


def detect_rules(manifesto: str) -> list[dict]:
    """The rules ``manifesto`` states in a family's own words, as ``[{"id", "params"}]`` (each family once).

    Args:
        manifesto: the manifesto text.
    """
    text = re.sub(r"\s+", " ", manifesto)
    found: dict[str, dict] = {}
    for fam, pattern, slots, kinds in _matchers():
        if fam.id in found:
            continue
        m = pattern.search(text)
        if m is None:
            continue
        params = {kinds[s][0]: _KINDS[kinds[s][1]][1](v) for s, v in zip(slots, m.groups())}
        try:
            found[fam.id] = fam.validate_params(params)
        except RuleError:
            continue
    for family_id, pattern, param in _CUES:
        # A cue never overrides the templates: it only adds a family they did not find and that fits them.
        m = pattern.search(text) if compatible([*found, family_id]) else None
        if m is not None:
            try:
                found[family_id] = families()[family_id].validate_params({param: m.group(1)} if param else {})
            except RuleError:
                continue
    rules = [{"id": k, "params": v} for k, v in found.items()]
    try:
        return normalize_rules(rules)
    except RuleError:  # two matched families that conflict: the manifesto contradicts itself; judge neither
        return []


def make_verifier():
    """``verifier(manifesto, prompt, reply) -> [{"id", "description", "passed"}]`` for the server's /v1/verify."""

    def verifier(manifesto: str, prompt: str, reply: str) -> list[dict]:
        rules = detect_rules(manifesto)
        if not rules:
            return []
        passed = verify_each(rules, reply, prompt)
        described = families()
        return [{"id": r["id"], "description": described[r["id"]].description, "passed": passed[r["id"]]}
                for r in rules]

    return verifier
