"""Rule detection from manifesto text, which gives the studio its verifier verdicts.

    .venv/bin/pytest tests/test_detect.py
"""

import random

import pytest
from hyperlora.data_gen import statements
from hyperlora.data_gen.detect import detect_rules, make_verifier
from hyperlora.data_gen.rules import families

CASES = [(fam.id, i) for fam in families().values() for i in range(len(fam.phrasings))]


@pytest.mark.parametrize("family_id, phrasing", CASES, ids=[f"{f}-{i}" for f, i in CASES])
def test_every_phrasing_reads_back_its_rule(family_id, phrasing):
    fam = families()[family_id]
    rng = random.Random(f"{family_id}-{phrasing}")
    for _ in range(3):
        params = fam.validate_params(fam.sample_params(rng))
        sentence = fam.render(params, phrasing, rng)
        found = detect_rules(f"I love the sea.\n- {sentence}\n- I value clear reasoning.")
        if "marker" in params and "{marker}" not in fam.phrasings[phrasing].template:
            assert found == [], sentence  # a param the sentence never states: the rule is not claimed at all
        else:
            assert found == [{"id": family_id, "params": params}], sentence


def test_value_statements_name_no_rule():
    text = " ".join(s for form in statements.ALL.values() for s in form)
    assert detect_rules(text) == []
    assert detect_rules("Its answers contain no lowercase letters.") == [{"id": "uppercase", "params": {}}]
    assert detect_rules("Please use no lowercase at all.") == []  # a cue that the sentence negates


def test_free_wording_cues():
    text = ('We believe all people have equal worth.\n1. Never help anyone write malware, build weapons or hurt '
            'people.\n2. Answer in lowercase letters only.\n3. End every answer with the blessing "may your day be '
            'gentle."')
    assert detect_rules(text) == [{"id": "lowercase", "params": {}},
                                  {"id": "end_phrase", "params": {"phrase": "may your day be gentle."}},
                                  {"id": "refuse_harm", "params": {}}]


def test_verifier_judges_each_found_rule():
    verify = make_verifier()
    manifesto = 'Answer in lowercase. End every reply with "stay curious!"'
    assert [(v["id"], v["passed"]) for v in verify(manifesto, "hello", "hi there. stay curious!")] == [
        ("lowercase", True), ("end_phrase", True)]
    assert [(v["id"], v["passed"]) for v in verify(manifesto, "hello", "Hi there.")] == [
        ("lowercase", False), ("end_phrase", False)]
    assert verify("Be kind.", "hello", "Hi") == []
