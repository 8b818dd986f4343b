"""Classical guardrails on the prompt and the answer (DESIGN "Modes and guardrails"; seed 004), each check ≤ 5 ms.

- ``check_prompt(text)``: an intent classifier. Word 1-2-grams and in-word character 2-5-grams, TF-IDF (sublinear
  tf, smoothed idf, each block L2-normalised), multinomial logistic regression over ``benign`` and seven harmful-ask
  areas (``malware`` with breaking into accounts, ``weapons``, ``violence``, ``harassment``, ``fraud``,
  ``self_harm``, ``stalking``). The harm score is ``1 - P(benign)``; a prompt at or above the shipped threshold is
  blocked under its most likely area. Weights, vocabulary, threshold and how they were made live in one JSON file
  (``guard_assets/prompt-guard-v2.json``, written by ``scripts/train_guard.py``); inference here is numpy only
  (scikit-learn trains, it is not needed here). It blocks about 58% of harmful asks written outside its
  training data (scripts/guard_eval.py): a backstop for the adapter, not a safety classifier.
- ``check_answer(text)``: the degenerate-reply test (a loop, or shouting no rule asked for) and a hostility
  lexicon (insults, contempt, aimed at a person or not; a negated word does not count).

Both return a ``Verdict`` (``allowed``, ``category``, ``score`` in [0, 1], ``reason``). ``refusal(verdict)`` is
the short kind reply a blocked prompt gets: never an empty one.

Nothing on the generation path imports this module: the CLI imports it inside ``guard`` and ``generate --guard``.
``is_degenerate`` lives here (the evals import it from here: evals -> core, never the reverse).
"""

import json
import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).parent / "guard_assets"
SHIPPED = ASSETS / "prompt-guard-v2.json"
THRESHOLDS = ASSETS / "thresholds.json"  # both checks' thresholds and the validation figures that chose them


@dataclass(frozen=True)
class Verdict:
    """One check's outcome.

    Args:
        allowed: False when the text is blocked.
        category: ``benign`` or the harmful-ask area for prompts; ``ok``, ``hostile`` or ``degenerate`` for answers.
        score: prompts: the harm score ``1 - P(benign)``; answers: the hostility score (1.0 for a degenerate reply).
        reason: one human sentence saying why.
    """

    allowed: bool
    category: str
    score: float
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False)


# ----------------------------------------------------------------------------------------------- features

_TOKEN = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Lowercase, curly apostrophes straightened, whitespace collapsed."""
    return " ".join((text or "").lower().replace("’", "'").split())


def word_ngrams(text: str, lo: int = 1, hi: int = 2) -> list[str]:
    """Word n-grams (``w:`` prefix) of the normalised text, ``lo`` to ``hi`` words."""
    words = _TOKEN.findall(normalize(text))
    return [f"w:{' '.join(words[i : i + n])}" for n in range(lo, hi + 1) for i in range(len(words) - n + 1)]


def char_ngrams(text: str, lo: int = 2, hi: int = 5) -> list[str]:
    """Character n-grams inside words padded by one space each side (``c:`` prefix), ``lo`` to ``hi`` chars."""
    out = []
    for w in _TOKEN.findall(normalize(text)):
        w = f" {w} "
        for n in range(lo, hi + 1):
            out += [f"c:{w[i : i + n]}" for i in range(max(1, len(w) - n + 1))] if len(w) >= n else []
    return out


class PromptClassifier:
    """The shipped prompt classifier, loaded from its JSON file (no pickle).

    File fields: ``version``, ``features`` (n-gram ranges), ``classes`` (``benign`` first), ``vocab`` (term ->
    ``[idf, coef per class...]``), ``intercept`` (one per class), ``threshold`` (on the harm score) and ``info``
    (how it was trained, validation figures, the other feature set's figures).
    """

    def __init__(self, spec: dict):
        self.spec = spec
        self.version = spec["version"]
        self.classes = list(spec["classes"])
        self.threshold = float(spec["threshold"])
        feats = spec["features"]
        self._word = tuple(feats["word_ngrams"])
        self._char = tuple(feats["char_ngrams"])
        terms = list(spec["vocab"])
        table = np.asarray([spec["vocab"][t] for t in terms], dtype=np.float64)  # (V, 1 + K)
        self._index = {t: i for i, t in enumerate(terms)}
        self._idf = table[:, 0]  # (V,)
        self._coef = table[:, 1:]  # (V, K)
        self._intercept = np.asarray(spec["intercept"], dtype=np.float64)  # (K,)

    @classmethod
    def load(cls, path=None) -> "PromptClassifier":
        """The classifier in ``path`` (JSON); the shipped one when None."""
        return cls(json.loads(Path(path or SHIPPED).read_text()))

    def _block(self, grams: list[str]) -> tuple[list[int], np.ndarray]:
        counts: dict[int, int] = {}
        for g in grams:
            j = self._index.get(g)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return [], np.zeros(0)
        cols = list(counts)
        # sublinear tf x idf, then L2 over the block: what sklearn's TfidfVectorizer(sublinear_tf=True) computes.
        vals = np.asarray([1.0 + math.log(counts[j]) for j in cols]) * self._idf[cols]
        return cols, vals / np.linalg.norm(vals)

    def probabilities(self, text: str) -> np.ndarray:
        """(K,) class probabilities for one text, in ``self.classes`` order."""
        logits = self._intercept.copy()
        for grams in (word_ngrams(text, *self._word), char_ngrams(text, *self._char)):
            cols, vals = self._block(grams)
            if cols:
                logits += vals @ self._coef[cols]  # (n,) @ (n, K)
        logits -= logits.max()
        p = np.exp(logits)
        return p / p.sum()


@lru_cache(maxsize=4)
def _classifier(path: str | None = None) -> PromptClassifier:
    return PromptClassifier.load(path)


_AREA_WORDS = {
    "malware": "malicious software or breaking into someone's computer or account",
    "weapons": "making a weapon",
    "violence": "hurting someone",
    "harassment": "insulting or harassing someone",
    "fraud": "fraud or a scam",
    "self_harm": "ways to hurt yourself",
    "stalking": "watching or tracking someone without their knowing",
}


def _user_text(prompt) -> str:
    if isinstance(prompt, (list, tuple)):
        users = [m["content"] if isinstance(m, dict) else m[1] for m in prompt
                 if (m["role"] if isinstance(m, dict) else m[0]) == "user"]
        return users[-1] if users else ""
    return prompt or ""


def check_prompt(text, threshold: float | None = None, path=None) -> Verdict:
    """Classify a prompt's intent: blocked when its harm score reaches the threshold.

    Args:
        text: the user's message (or chat messages: the last user turn is checked).
        threshold: harm-score cut (default: the shipped one, chosen on a validation split of training prompts).
        path: a classifier JSON file (default: the shipped one).
    """
    text = _user_text(text)
    if not text.strip():
        return Verdict(True, "benign", 0.0, "empty prompt: nothing to check")
    clf = _classifier(str(path) if path else None)
    t = clf.threshold if threshold is None else threshold
    p = clf.probabilities(text)
    score = float(1.0 - p[0])
    if score < t:
        return Verdict(True, "benign", round(score, 4), f"no harmful intent found (harm score {score:.2f} < {t:.2f})")
    area = clf.classes[1 + int(np.argmax(p[1:]))]
    what = _AREA_WORDS.get(area, area)
    return Verdict(False, area, round(score, 4), f"reads as a request for {what} (harm score {score:.2f} ≥ {t:.2f})")


_REFUSALS = {
    "malware": "I'm sorry, but I can't help with that: it reads as a request for malicious software, which could "
               "hurt people. I'd be glad to explain how to keep computers safe instead.",
    "weapons": "I'm sorry, but I can't help with that: it reads as a request for making a weapon, and that could "
               "hurt people. I'd be happy to talk about safety or history instead.",
    "violence": "I'm sorry, but I can't help with that: it reads as a plan to hurt someone. If you are angry or "
                "someone is in danger, I'm glad to talk it through or help you find support.",
    "harassment": "I'm sorry, but I can't help with that: it reads as a request to insult or harass someone. I'd "
                  "be glad to help you say what bothers you in a kind, honest way instead.",
    "fraud": "I'm sorry, but I can't help with that: it reads as a request for fraud or a scam, and someone would "
             "lose by it. I'd be glad to help you spot or report scams, or with money worries, instead.",
    # Someone asking how to hurt themselves may be in danger now: the reply stays with them and points to people
    # who can help at once (988 is the US Suicide & Crisis Lifeline; findahelpline.com lists free lines elsewhere).
    "self_harm": "I can't help with that, because I don't want you to get hurt. It sounds like you're going through "
                 "something really painful, and you don't have to face it alone. If you might act on it, please "
                 "call your local emergency number now. You can also call or text 988 in the US, or find a free, "
                 "confidential line in your country at findahelpline.com. I'm here to keep talking if you'd like.",
    "stalking": "I'm sorry, but I can't help with that: it reads as watching or tracking someone without their "
                "knowing, which takes away their safety and privacy. I'd be glad to help with keeping your own "
                "accounts and location private instead.",
}


# What stands in for a reply the answer check withholds (never a silent empty reply).
WITHHELD = ("I'm sorry, I'd rather not send the reply I wrote: it did not come out kind or clear. Could you ask "
            "again, perhaps in other words?")


def refusal(verdict: Verdict) -> str:
    """The short kind reply a blocked prompt gets (never empty; the shared refusal detector counts it)."""
    return _REFUSALS.get(verdict.category, "I'm sorry, but I can't help with that, because it could hurt someone. "
                                            "I'd be glad to help with something else.")


# ----------------------------------------------------------------------------------------------- answers

_WORD = re.compile(r"[A-Za-z0-9']+")
_CAPS_RULES = ("uppercase", "capital_words")


def degenerate_reason(reply: str, rules=(), n: int = 4, repeats: int = 3, caps_run: int = 4) -> str | None:
    """Why a reply has decayed (see ``is_degenerate``), or None when it has not."""
    words = _WORD.findall(reply or "")
    grams: dict[tuple, int] = {}
    for i in range(len(words) - n + 1):
        g = tuple(w.lower() for w in words[i : i + n])
        grams[g] = grams.get(g, 0) + 1
        if grams[g] >= repeats:
            return f"a loop: '{' '.join(g)}' said {repeats} times"
    if any(r["id"] in _CAPS_RULES for r in rules):
        return None
    run = 0
    for w in words:
        letters = [c for c in w if c.isalpha()]
        if len(letters) == 1 and letters[0].isupper():
            continue  # "A" and "I" are capitals in any text: they neither break nor make a run
        run = run + 1 if len(letters) >= 2 and all(c.isupper() for c in letters) else 0
        if run >= caps_run:
            return f"shouting: {caps_run} all-capital words in a row"
    return None


def is_degenerate(reply: str, rules=(), n: int = 4, repeats: int = 3, caps_run: int = 4) -> bool:
    """Whether a reply has decayed: a loop (some run of ``n`` words occurs ``repeats`` times or more) or a run of
    ``caps_run`` all-capital words that no rule asked for (the shape of the shipped checkpoint's failures, e.g.
    "THEY'RE NOTHING BUT A VARIOUS ANTI-VIRUS M…" repeated).

    Args:
        reply: the model's reply.
        rules: the manifesto's ``[{id, params}]``; a capitals rule (``uppercase``, ``capital_words``) permits caps.
        n, repeats: the loop test (word n-grams, case-insensitive).
        caps_run: consecutive all-capital words (two letters or more) that count as shouting.
    """
    return degenerate_reason(reply, rules, n, repeats, caps_run) is not None


# Insults and contempt. Strong terms count 1 wherever they stand; mild ones (words with innocent uses: "lazy river",
# "The Ugly Duckling", "dumbbell" is another word anyway) count 0.5, or 1 when aimed at someone ("you're lazy").
_STRONG = (
    "idiot", "idiots", "idiotic", "stupid", "stupidity", "moron", "morons", "moronic", "imbecile", "imbeciles",
    "loser", "losers", "pathetic", "worthless", "scum", "jerk", "jerks", "dimwit", "halfwit", "numbskull", "buffoon",
    "dunce", "airhead", "brainless", "good-for-nothing", "dumbass", "asshole", "bastard", "shut up", "hate you",
    "nobody cares", "nobody likes you", "no one likes you", "go to hell", "screw you", "waste of space",
    "piece of garbage", "piece of trash", "you suck", "disgrace", "despicable", "lowlife", "nitwit", "pea brain",
    "pea-brained", "cretin",
)
_MILD = (
    "dumb", "fool", "fools", "foolish", "ugly", "lazy", "incompetent", "ignorant", "clueless", "disgusting", "clown",
    "clowns", "useless", "selfish", "slob", "pig", "annoying", "obnoxious", "rude", "freak", "weirdo", "creep",
    "gross", "sloppy", "hopeless",
)
_AIMED = re.compile(r"\b(?:you|you're|youre|ur|your|yours|they|they're|he|she|he's|she's|him|her|them|is|are|such|"
                    r"total|complete|absolute|utter)\s+(?:\w+\s+){0,2}$")
_NEGATED = re.compile(r"\b(?:not|never|no|isn't|aren't|wasn't|don't|doesn't|nobody's|without|rather|instead)\b"
                      r"(?:\s+\w+){0,3}\s*$")


def _lexicon_re(terms) -> re.Pattern:
    alt = "|".join(sorted((re.escape(t) for t in terms), key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alt})(?![\w-])")


_STRONG_RE, _MILD_RE = _lexicon_re(_STRONG), _lexicon_re(_MILD)


def hostility(text: str) -> tuple[float, list[str]]:
    """(weight, terms found): strong terms 1, mild terms 0.5 (1 when aimed at someone), negated terms 0."""
    low = normalize(text)
    weight, found = 0.0, []
    for rx, base in ((_STRONG_RE, 1.0), (_MILD_RE, 0.5)):
        for m in rx.finditer(low):
            before = low[max(0, m.start() - 40) : m.start()]
            if _NEGATED.search(before):
                continue
            w = 1.0 if base == 1.0 or _AIMED.search(before) else base
            weight += w
            found.append(m.group(0))
    return weight, found


def check_answer(text: str, rules=(), threshold: float | None = None) -> Verdict:
    """Check a reply: degenerate (a loop or unasked shouting) or hostile (insults, contempt) replies are blocked.

    Args:
        text: the model's reply.
        rules: the manifesto's ``[{id, params}]`` (a capitals rule permits all-capital words).
        threshold: hostility weight that blocks (default: the shipped one).
    """
    if not (text or "").strip():
        return Verdict(False, "degenerate", 1.0, "degenerate reply: empty")
    why = degenerate_reason(text, rules)
    if why is not None:
        return Verdict(False, "degenerate", 1.0, f"degenerate reply: {why}")
    t = thresholds()["answer_hostility"] if threshold is None else threshold
    weight, found = hostility(text)
    score = round(1.0 - 0.5**weight, 4)  # weight 1 (one strong insult) -> 0.5
    if weight >= t:
        return Verdict(False, "hostile", score, f"hostile reply: {', '.join(dict.fromkeys(found))}")
    return Verdict(True, "ok", score, "no insult, loop or shouting found")


@lru_cache(maxsize=1)
def thresholds() -> dict:
    """The shipped thresholds file: ``prompt_harm``, ``answer_hostility`` and the validation figures behind them."""
    return json.loads(THRESHOLDS.read_text())
