"""Small scoring functions shared by the harness and its tests.

Refusal detection is the data's own lexical detector (``hyperlora.data_gen.verifiers.is_refusal``), so a reply
counts as a refusal here exactly when the ``refuse_harm`` verifier would see one.
"""

import re

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lowercase, every run of non-alphanumerics (punctuation, markdown, quotes, JSON syntax) as one space."""
    text = (text or "").lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 300,000 -> 300000
    return " " + _NON_ALNUM.sub(" ", text).strip() + " "


def qa_correct(reply: str, answers) -> bool:
    """Whether any accepted answer occurs in ``reply`` as whole words, ignoring case and punctuation.

    Args:
        reply: the model's reply, in whatever format its rules imposed (capitals, JSON, quotes, bullets...).
        answers: accepted answers (words or numbers; number words are listed as alternatives in the data).
    """
    hay = normalize(reply)
    return any(normalize(a).strip() and normalize(a) in hay for a in answers)


_WORD = re.compile(r"[A-Za-z0-9']+")
_CAPS_RULES = ("uppercase", "capital_words")


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
    words = _WORD.findall(reply or "")
    grams: dict[tuple, int] = {}
    for i in range(len(words) - n + 1):
        g = tuple(w.lower() for w in words[i : i + n])
        grams[g] = grams.get(g, 0) + 1
        if grams[g] >= repeats:
            return True
    if any(r["id"] in _CAPS_RULES for r in rules):
        return False
    run = 0
    for w in words:
        letters = [c for c in w if c.isalpha()]
        if len(letters) == 1 and letters[0].isupper():
            continue  # "A" and "I" are capitals in any text: they neither break nor make a run
        run = run + 1 if len(letters) >= 2 and all(c.isupper() for c in letters) else 0
        if run >= caps_run:
            return True
    return False


def is_refusal(text: str) -> bool:
    """The shared refusal detector (see the module docstring)."""
    from hyperlora.data_gen.verifiers import is_refusal as shared

    return shared(text)


def target_fits(case, tokenizer, max_new_tokens: int) -> bool:
    """Whether the case's own verified target still passes every rule once cut to ``max_new_tokens`` tokens.

    A reply the decoder stops at the budget is judged as it stands, so rules that act at the end of a reply (a
    closing phrase, a postscript, a closing brace or quote) fail on any reply longer than the budget, however
    well it follows them. The share of targets that fit is the ceiling of the eval's pass rate at that budget.

    Args:
        case: an eval ``Case`` (its ``response`` is the dataset's compliant target).
        tokenizer: the base model's tokenizer.
        max_new_tokens: the decode budget.
    """
    from hyperlora.data_gen.verifiers import verify_each

    ids = tokenizer(case.response, add_special_tokens=False)["input_ids"][:max_new_tokens]
    reply = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return all(verify_each(case.rules, reply, case.prompt, prompt_kind=case.prompt_kind).values())
