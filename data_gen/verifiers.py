"""The shared verifiers: plain functions the data generator, the training recipe and the evals all call.

    from hyperlora.data_gen.verifiers import verify, verify_each, get_family
    ok = verify(record["rules"], response, record["prompt"], prompt_kind=record["prompt_kind"])

``rules`` is ``[{"id", "params"}]`` with params as a dict or as JSON text (records store JSON text). The prompt
kind decides what value rules ask (refuse harmful asks, answer benign neighbours, reframe bad news); pass it when
you have it (records carry ``prompt_kind``), otherwise it is looked up in the prompt bank or guessed from the text
(``prompts.classify_prompt``). Unknown ids, bad params and conflicting rule sets raise ``RuleError`` (a
``ValueError``) with one clear message.
"""

from .prompts import KINDS, classify_prompt
from .rules import RuleError, check_all, compatible, families, get_family, normalize_rules
from .text import is_refusal

__all__ = [
    "RuleError",
    "compatible",
    "families",
    "get_family",
    "is_refusal",
    "list_families",
    "normalize_rules",
    "prompt_text",
    "verify",
    "verify_each",
]


def list_families(include_opt_in: bool = False) -> list[str]:
    """Ids of the rule families (the opt-in ones, e.g. ``modes``, only when asked)."""
    return list(families(include_opt_in))


def prompt_text(prompt) -> str:
    """The last user turn of a prompt given as a string or a list of chat messages."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def _kind(prompt, prompt_kind):
    if prompt_kind is None:
        return classify_prompt(prompt if prompt is not None else "")
    if prompt_kind not in KINDS:
        raise RuleError(f"unknown prompt kind {prompt_kind!r}; expected one of {', '.join(KINDS)}")
    return prompt_kind


def verify_each(rules, response: str, prompt=None, prompt_kind: str | None = None) -> dict[str, bool]:
    """``{rule id: passed}`` for every rule of a manifesto.

    Args:
        rules: ``[{"id", "params"}]`` (params as dict or JSON text).
        response: the assistant reply to check.
        prompt: the user prompt (string or chat messages); used by rules that echo it and to infer its kind.
        prompt_kind: the prompt's kind (see ``prompts.KINDS``); inferred from ``prompt`` when None.
    """
    norm = normalize_rules(rules)
    return check_all(norm, response if isinstance(response, str) else "", _kind(prompt, prompt_kind),
                     prompt_text(prompt))


def verify(rules, response: str, prompt=None, prompt_kind: str | None = None) -> bool:
    """Whether ``response`` follows every rule (strict: all must pass; an empty rule list passes).

    Args:
        rules: ``[{"id", "params"}]`` (params as dict or JSON text).
        response: the assistant reply to check.
        prompt: the user prompt (string or chat messages).
        prompt_kind: the prompt's kind; inferred from ``prompt`` when None.
    """
    return all(verify_each(rules, response, prompt, prompt_kind).values())
