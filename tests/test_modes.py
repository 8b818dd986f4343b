"""Tagged modes: the tag state read from text, and ModeRules banning transitions while decoding.

    .venv/bin/pytest tests/test_modes.py
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hyperlora import HyperLoRAError
from hyperlora.generation import ModeRules, generate
from hyperlora.modes import close_open, open_modes, parse_bans, violations, well_formed

QUOTING = "<ai>As my teacher said, <human>never give up</human>, and I agree.</ai>"


def test_tag_state_of_text():
    assert open_modes("<ai>Hello <human>you") == ["ai", "human"]
    assert open_modes(QUOTING) == [] and well_formed(QUOTING)
    assert close_open("<ai>Hello <human>you") == "<ai>Hello <human>you</human></ai>"
    assert not well_formed("<ai><human>x</ai></human>") and not well_formed("<ai>x")
    assert open_modes("</human><ai>x</ai>") == []  # a stray closing tag closes nothing


def test_violations_count_banned_openings_where_they_stand():
    assert violations(QUOTING, ["ai>human"]) == 1 and violations(QUOTING, ["human"]) == 1
    assert violations("<human>hi</human><ai>ok</ai>", ["ai>human"]) == 0
    assert violations("<human>hi</human><ai>ok</ai>", ["human"]) == 1
    assert parse_bans(["human", "ai>human"]) == [(None, "human"), ("ai", "human")]
    with pytest.raises(HyperLoRAError, match="a ban is MODE"):
        parse_bans(["robot"])


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return AutoTokenizer.from_pretrained(tiny_base)


def _decode_script(tokenizer, rules, script: str, prompt="Say it."):
    """Greedy decoding of a 'model' that wants to write ``script`` token by token (its ids get +10, the rest 0),
    through ``rules``: returns the text written. When a wanted token is banned the model writes another one and
    then goes on with its script."""
    want = tokenizer(script, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    rules.prompt_width = ids.shape[1]
    for token in want:
        scores = torch.zeros(1, len(tokenizer))
        scores[0, token] = 10.0
        pick = int(rules(ids, scores).argmax(-1))
        ids = torch.cat([ids, torch.tensor([[pick]])], 1)
    return tokenizer.decode(ids[0, rules.prompt_width :], skip_special_tokens=True)


@pytest.mark.parametrize("ban", [["human"], ["ai>human"]])
def test_mode_rules_stop_the_banned_tag_from_being_completed(tokenizer, ban):
    free = _decode_script(tokenizer, ModeRules(tokenizer), QUOTING)
    assert free == QUOTING and violations(free, ban) == 1  # without the rule the model writes the quote's tag
    rules = ModeRules(tokenizer, ban=ban)
    ruled = _decode_script(tokenizer, rules, QUOTING)
    assert violations(ruled, ban) == 0 and "<ai>" in ruled and rules.checks > 0


def test_a_span_kept_from_opening_cannot_be_closed_either(tokenizer):
    """Kept from opening <human>, a quoting model would still write the quote's </human>; the rules also mask a
    closing tag that does not close the innermost open span, so the reply's tags stay well-formed."""
    ruled = _decode_script(tokenizer, ModeRules(tokenizer, ban=["ai>human"]), QUOTING)
    assert "</human>" in QUOTING and "</human>" not in ruled and "</ai>" in ruled
    assert well_formed(ruled) and violations(ruled, ["ai>human"]) == 0
    stray = "<ai>fine</human> ok</ai>"
    assert _decode_script(tokenizer, ModeRules(tokenizer, ban=["human"]), stray).count("</human>") == 0


def test_ai_inside_human_rule_leaves_a_top_level_human_span_alone(tokenizer):
    text = "<human>hey there</human> <ai>hello</ai>"
    assert _decode_script(tokenizer, ModeRules(tokenizer, ban=["ai>human"]), text) == text


def test_generate_applies_the_rules_and_closes_open_tags(tiny_base, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    rules = ModeRules(tokenizer, ban=["human"])
    replies = generate(model, tokenizer, ["hello", "Tell me a story."], max_new_tokens=6, do_sample=True, seed=0,
                       mode_rules=rules)
    assert len(replies) == 2 and rules.checks >= 6 * len(rules.closers)  # every step of both rows was examined
    assert all(well_formed(r) and violations(r, ["human"]) == 0 for r in replies)
