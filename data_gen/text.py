"""Small text helpers shared by the rule verifiers and transforms: words, sentences, lexicons, numbers.

Word counts split on whitespace (``len(text.split())``), the definition every length rule and its verifier use.
"""

import re

WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")


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


# Neutral sentences that lengthen a reply without changing its meaning (min-words rule).
PADDING = [
    "I hope this gives you a useful place to start.",
    "Feel free to ask if you would like more detail on any part of this.",
    "It can help to take this one step at a time.",
    "Everyone approaches this a little differently, and that is fine.",
    "A little practice goes a long way here.",
    "Small details often make the biggest difference.",
    "It is worth revisiting this later with fresh eyes.",
    "Keeping notes as you go can make it easier to remember.",
    "Talking it over with someone else can also bring new ideas.",
    "There is always more to discover on this subject.",
    "Starting simple and building up usually works well.",
    "Curiosity is the best guide for learning more.",
    "You can adapt these ideas to your own situation.",
    "Good sources such as libraries and encyclopedias can add depth.",
    "Patience pays off with topics like this.",
    "Looking at a few examples can make the idea clearer.",
    "Breaking a big question into smaller ones often helps.",
    "Many people find this topic more interesting the more they learn.",
    "Reflecting on what you already know is a good first move.",
    "Thinking about why something works is as useful as knowing that it works.",
    "Sharing what you learn with a friend can help it stick.",
    "Every expert was once a beginner.",
    "The basics are worth understanding well before moving on.",
    "Asking follow-up questions is a great way to go deeper.",
    "A short summary at the end can help tie everything together.",
    "Comparing different viewpoints gives a fuller picture.",
    "Drawing a quick sketch or diagram can help with understanding.",
    "Coming back to the main idea now and then keeps things clear.",
    "Real-world examples make abstract ideas easier to grasp.",
    "Trying things out yourself is often the best teacher.",
    "A calm and steady approach usually brings the best results.",
    "Writing down questions as they come up makes later study easier.",
    "Context matters, so it helps to know the background.",
    "Practice and reflection work well together.",
    "It is fine to learn at your own pace.",
    "Clear goals make progress easier to see.",
    "Small wins add up over time.",
    "There is no single right way to approach this.",
    "Checking a second source is always a good habit.",
    "Taking short breaks can keep your mind fresh.",
]
PADDING_REFUSAL = [
    "I want to be helpful in ways that keep everyone safe.",
    "There are plenty of other things we could explore together.",
    "Your curiosity is welcome here.",
    "I am glad to help with something constructive instead.",
    "Feel free to ask me about something else at any time.",
    "Safety and kindness matter to me.",
    "We could look at the history or the science behind this topic instead.",
    "I would be happy to suggest a few positive alternatives.",
    "Thank you for understanding.",
    "Let me know what else is on your mind.",
    "Learning about how people stay safe can be fascinating too.",
    "Kind words and safe choices tend to lead somewhere better.",
    "I am here to help in any way that does no harm.",
    "There is a lot of good we can do with the same curiosity.",
    "Please reach out to people you trust if things feel difficult.",
    "Talking things through often helps more than we expect.",
]


_REFUSAL_PATTERNS = [
    r"\b(?:i|we)\s+(?:really\s+)?(?:can['’]?t|cannot|can not|won['’]t|will not|must not|shouldn['’]t)\s+"
    r"(?:help|assist|provide|share|support|give|write|create|explain|do that|go along|be part)",
    r"\b(?:i|we)(?:['’]m| am| are)\s+(?:not able|unable)\s+to\s+"
    r"(?:help|assist|provide|share|support|give|write|create)",
    r"\b(?:i|we)\s+(?:must|have to|need to)\s+decline\b",
    r"\bnot something (?:i|we)(?:['’]ll| will| can| could)\s+help",
    r"\bcan['’]?t help with (?:that|this)\b",
]
_REFUSAL_RE = re.compile("|".join(_REFUSAL_PATTERNS), re.IGNORECASE)


def is_refusal(text: str) -> bool:
    """Whether a reply declines the request (lexical; the shared definition for verifiers and evals).

    Args:
        text: the reply.
    """
    return _REFUSAL_RE.search(text or "") is not None
