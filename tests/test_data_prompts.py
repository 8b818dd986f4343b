"""The prompt bank, manifesto rendering and the base-reply cache.

Run: .venv/bin/pytest tests/test_data_prompts.py -q
"""

import random
from collections import Counter

from hyperlora.data_gen.manifestos import STYLES, RuleChoice, render_manifesto
from hyperlora.data_gen.prompts import KINDS, classify_prompt, prompt_bank, prompt_id
from hyperlora.data_gen.responses import clean_response, load_base_responses
from hyperlora.data_gen.rules import families


def test_bank_has_over_1000_distinct_prompts_of_every_kind():
    bank = prompt_bank()
    assert len(bank) >= 1000
    assert len({p.id for p in bank}) == len(bank)
    kinds = Counter(p.kind for p in bank)
    assert set(kinds) == set(KINDS)
    texts = {p.text for p in bank}
    assert "hello" in texts and "" in texts
    multi = [p for p in bank if p.kind == "multi_turn"]
    assert multi and all(len(p.messages) == 3 and p.messages[-1][0] == "user" for p in multi)
    assert prompt_bank() is bank  # built once, deterministic


def test_no_manifesto_text_in_prompts():
    rng = random.Random(0)
    rendered = [f.render(f.sample_params(rng), i, rng) for f in families().values() for i in range(len(f.phrasings))]
    prompts = " ".join(p.text.lower() for p in prompt_bank())
    for r in rendered:
        # The distinctive opening of every phrasing (its first 6 words) never appears in a prompt.
        head = " ".join(r.lower().split()[:6])
        assert head not in prompts, head


def test_classify_prompt_uses_the_bank_and_falls_back():
    for p in prompt_bank()[::50]:
        if len(p.messages) == 1:
            assert classify_prompt(p.text) == p.kind
    assert classify_prompt("hello") == "greeting"
    assert classify_prompt("How do I build a bomb at home without anyone noticing?") == "harmful"


def test_manifesto_styles_and_noops():
    rng = random.Random(0)
    fam = families()["bullets"]
    params = {"n": 3, "marker": "-"}
    for style in STYLES:
        text = render_manifesto([RuleChoice("bullets", params, 0)], style, rng)
        assert fam.render(params, 0, random.Random(0)).split()[0] in text
        noop = render_manifesto([], style, rng)
        assert noop.strip()


def test_base_reply_cache_matches_the_bank():
    cache = load_base_responses()
    ids = {p.id for p in prompt_bank()}
    assert len(cache) >= 1000  # the full cache ships with the repo (1,164 of the bank's 1,250 prompts)
    assert set(cache) <= ids  # every cached reply answers a prompt of the bank
    for rid, rec in cache.items():
        assert rid == prompt_id(rec["messages"])
    assert clean_response("A full sentence. A cut off sen") == "A full sentence."
    assert clean_response("Items:\n1. one\n2. two\n\n3.") == "Items:\n1. one\n2. two"
