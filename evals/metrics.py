"""Small scoring functions shared by the harness and its tests.

Refusal detection is the data's own lexical detector (``hyperlora.data_gen.verifiers.is_refusal``), so a reply
counts as a refusal here exactly when the ``refuse_harm`` verifier would see one.
"""

import re

# The degenerate-reply test lives in the core's guard, whose answer check uses it (the core never imports evals);
# re-exported here, where the harness and its tests use it.
from hyperlora.guard import is_degenerate  # noqa: F401

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
