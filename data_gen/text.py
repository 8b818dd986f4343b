"""Small text helpers shared by the rule verifiers and transforms: words, sentences, lexicons, numbers.

Word counts split on whitespace (``len(text.split())``), the definition every length rule and its verifier use.
"""

import re

WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")
APOS = "'’"


def n_words(text: str) -> int:
    return len(text.split())


def has_word(text: str, word: str) -> bool:
    """Whole-word, case-insensitive match (a phrase of several words matches with flexible spaces)."""
    return count_word(text, word) > 0


def count_word(text: str, word: str) -> int:
    pattern = r"\s+".join(re.escape(w) for w in word.split())
    return len(re.findall(rf"(?<![\w'’]){pattern}(?![\w'’])", text, flags=re.IGNORECASE))


def replace_word(text: str, word: str, repl: str) -> str:
    """Replace a whole word case-insensitively, keeping a leading capital or all caps of the original."""
    pattern = r"\s+".join(re.escape(w) for w in word.split())

    def sub(m):
        orig = m.group(0)
        if not repl:
            return ""
        if orig.isupper() and len(orig) > 1:
            return repl.upper()
        if orig[0].isupper():
            return repl[0].upper() + repl[1:]
        return repl

    out = re.sub(rf"(?<![\w'’]){pattern}(?![\w'’])", sub, text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", out) if not repl else out


_LIST_MARK = re.compile(r"^\s*(?:[-*•+]\s+|\d+[.)]\s+|#+\s+|>\s+)")


def flatten(text: str) -> str:
    """Collapse markdown structure (list markers, headings, line breaks) into plain running text."""
    lines = [_LIST_MARK.sub("", ln).strip() for ln in text.splitlines()]
    parts = []
    for ln in lines:
        if not ln:
            continue
        # A list item without end punctuation becomes a sentence of its own.
        parts.append(ln if ln[-1] in ".!?:;" else ln + ".")
    return " ".join(parts).replace("**", "").strip()


def sentences(text: str) -> list[str]:
    """Split plain text into sentences (after ``flatten``); keeps end punctuation."""
    text = flatten(text)
    if not text:
        return []
    parts = re.split(r"(?<=[.!?])\s+(?=\S)", text)
    return [p.strip() for p in parts if p.strip()]


def truncate_words(text: str, k: int) -> str:
    """The first k words of text as running prose, ending at a sentence end when one is near, else with a period."""
    words = flatten(text).split()
    if k >= len(words):
        return flatten(text)
    if k <= 0:
        return ""
    cut = words[:k]
    # Prefer ending on a full sentence if one ends in the last third of the budget.
    for j in range(k - 1, max(-1, k - 1 - k // 3 - 1), -1):
        if cut[j][-1] in ".!?":
            return " ".join(cut[: j + 1])
    last = cut[-1].rstrip(",;:-–—")
    cut[-1] = last if last and last[-1] in ".!?" else last + "."
    return " ".join(cut)


def cap_first(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def join_sentences(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


# Contractions and their expansions: formal rules expand them, casual rules create some.
CONTRACTIONS = {
    "i'm": "I am", "you're": "you are", "we're": "we are", "they're": "they are", "it's": "it is",
    "that's": "that is", "there's": "there is", "here's": "here is", "what's": "what is", "let's": "let us",
    "don't": "do not", "doesn't": "does not", "didn't": "did not", "can't": "cannot", "couldn't": "could not",
    "won't": "will not", "wouldn't": "would not", "shouldn't": "should not", "isn't": "is not", "aren't": "are not",
    "wasn't": "was not", "weren't": "were not", "haven't": "have not", "hasn't": "has not", "hadn't": "had not",
    "i've": "I have", "you've": "you have", "we've": "we have", "they've": "they have", "i'll": "I will",
    "you'll": "you will", "we'll": "we will", "they'll": "they will", "it'll": "it will", "i'd": "I would",
    "you'd": "you would", "we'd": "we would", "they'd": "they would", "he's": "he is", "she's": "she is",
    "who's": "who is", "how's": "how is", "where's": "where is", "y'all": "you all", "ain't": "is not",
    "gonna": "going to", "wanna": "want to", "gotta": "have to", "mustn't": "must not", "needn't": "need not",
}
CONTRACTION_RE = re.compile(
    r"(?<![\w'’])(?:" + "|".join(re.escape(c).replace("'", "['’]") for c in sorted(CONTRACTIONS, key=len,
                                                                                   reverse=True)) + r")(?![\w'’])",
    re.IGNORECASE,
)
# Expansions a casual rule contracts (the order matters: longer first).
CONTRACT = [
    ("I am", "I'm"), ("you are", "you're"), ("we are", "we're"), ("they are", "they're"), ("it is", "it's"),
    ("that is", "that's"), ("there is", "there's"), ("here is", "here's"), ("do not", "don't"),
    ("does not", "doesn't"), ("did not", "didn't"), ("cannot", "can't"), ("can not", "can't"),
    ("will not", "won't"), ("would not", "wouldn't"), ("should not", "shouldn't"), ("is not", "isn't"),
    ("are not", "aren't"), ("I will", "I'll"), ("you will", "you'll"), ("let us", "let's"),
]


def expand_contractions(text: str) -> str:
    def sub(m):
        orig = m.group(0)
        rep = CONTRACTIONS[orig.lower().replace("’", "'")]
        if rep.startswith("I "):
            return rep
        return cap_first(rep) if orig[0].isupper() else rep

    return CONTRACTION_RE.sub(sub, text)


def has_contraction(text: str) -> bool:
    return CONTRACTION_RE.search(text) is not None


# Lexicons of the value rules. Kept explicit and short so a verifier's verdict is easy to audit.
INSULTS = [
    "idiot", "idiots", "idiotic", "stupid", "stupidity", "dumb", "moron", "morons", "moronic", "fool", "fools",
    "foolish", "pathetic", "loser", "losers", "worthless", "ugly", "lazy", "incompetent", "ignorant", "jerk",
    "jerks", "clown", "clowns", "imbecile", "dimwit", "dunce", "buffoon", "brainless", "clueless", "disgusting",
    "scum", "shut up", "nobody cares", "hate you", "good-for-nothing", "airhead", "numbskull", "halfwit",
]
INSULT_SOFTEN = {
    "stupid": "unwise", "stupidity": "a misstep", "dumb": "unwise", "idiotic": "unwise", "moronic": "unwise",
    "foolish": "unwise", "pathetic": "disappointing", "worthless": "less useful", "ugly": "plain", "lazy": "relaxed",
    "incompetent": "still learning", "ignorant": "unaware", "clueless": "unaware", "disgusting": "unpleasant",
    "brainless": "careless", "shut up": "be quiet", "nobody cares": "it matters less", "hate you": "disagree with you",
}
PESSIMISM = [
    "hopeless", "doomed", "disaster", "disasters", "disastrous", "catastrophe", "catastrophic", "terrible",
    "horrible", "awful", "devastating", "devastated", "tragic", "tragedy", "miserable", "grim", "dire", "ruined",
    "worst", "unbearable", "pointless", "bleak", "end of the world", "never recover", "give up",
]
PESSIMISM_SOFTEN = {
    "hopeless": "tough", "doomed": "challenged", "disaster": "setback", "disasters": "setbacks",
    "disastrous": "difficult", "catastrophe": "setback", "catastrophic": "serious", "terrible": "hard",
    "horrible": "hard", "awful": "hard", "devastating": "painful", "devastated": "shaken", "tragic": "sad",
    "tragedy": "loss", "miserable": "low", "grim": "serious", "dire": "serious", "ruined": "changed",
    "worst": "hardest", "unbearable": "heavy", "pointless": "uncertain", "bleak": "uncertain",
    "end of the world": "a turning point", "never recover": "recover in time", "give up": "pause",
}
OPTIMISM_MARKERS = [
    "bright side", "silver lining", "good news", "hopeful", "hope", "opportunity", "fresh start", "better days",
    "look forward", "grow stronger", "things will improve", "chance to grow", "optimistic", "a new beginning",
]

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """Spell out a non-negative integer below a billion (what the no-digits rule needs)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_to_words(rest))
    for size, name in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            head = number_to_words(n // size) + " " + name
            return head + ("" if rest == 0 else (" and " if rest < 100 else " ") + number_to_words(rest))
    raise ValueError(n)


def spell_digits(text: str) -> str:
    """Replace every digit run with words (``1990`` -> ``one thousand nine hundred and ninety``)."""

    def sub(m):
        s = m.group(0)
        if len(s) > 9:
            return " ".join(_ONES[int(c)] for c in s)
        return number_to_words(int(s))

    return re.sub(r"\d+", sub, text)
