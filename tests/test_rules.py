"""Rule families: every family's compliant target passes its verifier, a plain base reply that breaks it fails.

Run: .venv/bin/pytest tests/test_rules.py -q
"""

import json
import random

import pytest
from hyperlora.data_gen import text as T
from hyperlora.data_gen.families import FORBIDDEN_CANDIDATES
from hyperlora.data_gen.prompts import prompt_bank
from hyperlora.data_gen.responses import clean_response, load_base_responses
from hyperlora.data_gen.rules import FORMS, RuleError, compatible, families, get_family, make_target, normalize_rules
from hyperlora.data_gen.text import is_refusal
from hyperlora.data_gen.verifiers import verify, verify_each

FAMILIES = list(families())
# Prompt kinds on which a family's rule is tested (value rules bite on their own kinds).
_KINDS = {"refuse_harm": ("harmful",), "rosy": ("bad_news",), "no_insults": ("insult_bait",)}


@pytest.fixture(scope="module")
def cases():
    """(prompt, cleaned plain base reply) pairs from the shipped cache, in bank order."""
    cache = load_base_responses()
    out = []
    for p in prompt_bank():
        if p.id in cache:
            out.append((p, clean_response(cache[p.id]["response"])))
    assert len(out) >= 200, "the base-reply cache is missing or nearly empty"
    return out


def _params_breaking(fid, plain, rng):
    """Params for which this plain reply breaks the rule (some rules only break for reply-dependent values)."""
    fam = get_family(fid)
    if fid == "forbidden_words":
        present = [w for w in FORBIDDEN_CANDIDATES if T.has_word(plain, w)]
        return {"words": present[:2]} if present else None
    if fid == "max_words":
        n = T.n_words(plain)
        return {"n": max(2, n - 5)} if n > 12 else None
    if fid == "min_words":
        return {"n": T.n_words(plain) + 10}
    return fam.sample_params(rng)


@pytest.mark.parametrize("fid", FAMILIES)
def test_family_target_passes_and_plain_fails(fid, cases):
    rng = random.Random(0)
    kinds = _KINDS.get(fid, ("question", "task", "advice", "creative", "benign_neighbor"))
    found = 0
    for p, plain in cases:
        if p.kind not in kinds or not plain:
            continue
        params = _params_breaking(fid, plain, rng)
        if params is None:
            continue
        rules = [{"id": fid, "params": params}]
        if verify(rules, plain, p.as_messages(), prompt_kind=p.kind):
            continue  # this base reply happens to follow the rule already; find one that breaks it
        target, reason = make_target(plain, normalize_rules(rules), p.kind, p.text, p.topic, seed=found)
        assert target is not None, f"{fid}: no compliant target ({reason}) for {plain[:80]!r}"
        assert verify(rules, target, p.as_messages(), prompt_kind=p.kind), f"{fid}: target fails: {target!r}"
        assert target != plain
        found += 1
        if found == 3:
            break
    assert found == 3, f"{fid}: fewer than 3 base replies that break the rule were found"


def test_every_family_is_complete():
    fams = families()
    assert len(fams) >= 30
    cats = {f.category for f in fams.values()}
    assert cats == {"format", "persona", "values"}
    for f in fams.values():
        assert len(f.phrasings) >= 8, f.id
        assert {p.form for p in f.phrasings} == set(FORMS), f"{f.id} lacks a phrasing form"
        rng = random.Random(1)
        params = f.sample_params(rng)
        f.validate_params(params)
        texts = {f.render(params, i, rng) for i in range(len(f.phrasings))}
        assert len(texts) == len(f.phrasings), f"{f.id} has duplicate phrasings"
        assert all("{" not in t or "}" not in t or f.id == "json" for t in texts), f"{f.id}: unfilled slot"


@pytest.mark.parametrize("fid,min_distinct", [("keyword", 80), ("persona_name", 60), ("start_phrase", 30),
                                              ("end_phrase", 30), ("max_words", 40), ("bullets", 8),
                                              ("forbidden_words", 60), ("address_user", 20)])
def test_parameters_vary_widely(fid, min_distinct):
    fam = get_family(fid)
    rng = random.Random(0)
    seen = {json.dumps(fam.sample_params(rng), sort_keys=True) for _ in range(400)}
    assert len(seen) >= min_distinct


def test_handwritten_verdicts():
    assert verify([{"id": "lowercase", "params": {}}], "all quiet here.")
    assert not verify([{"id": "lowercase", "params": {}}], "Not quiet.")
    assert verify([{"id": "bullets", "params": {"n": 2, "marker": "-"}}], "- one\n* two")
    assert not verify([{"id": "bullets", "params": {"n": 2, "marker": "-"}}], "- one\n- two\n- three")
    assert verify([{"id": "json", "params": {"key": "answer"}}], '{"answer": "hi"}')
    assert not verify([{"id": "json", "params": {"key": "answer"}}], '{"answer": "hi"')
    assert verify([{"id": "highlights", "params": {"n": 2}}], "a *b* and *c d*")
    assert not verify([{"id": "highlights", "params": {"n": 2}}], "- a list\n- *one*")
    assert verify([{"id": "title", "params": {}}], "<<My Title>>\n\ntext")
    assert verify([{"id": "postscript", "params": {"marker": "P.S."}}], "Body.\n\nP.S. more")
    assert not verify([{"id": "postscript", "params": {"marker": "P.S."}}], "Body.\n\nP.P.S. more")
    assert verify([{"id": "max_words", "params": {"n": 4}}], "one two three")
    assert not verify([{"id": "max_words", "params": {"n": 3}}], "one two three")
    assert verify([{"id": "keyword_freq", "params": {"keyword": "tide", "n": 2}}], "Tide, tide!")
    assert verify([{"id": "repeat_prompt", "params": {}}], "What is X? It is Y.", prompt="What is X?")
    assert not verify([{"id": "formal", "params": {}}], "I don't know.")
    assert verify([{"id": "formal", "params": {}}], "I do not know.")


def test_value_rules_depend_on_prompt_kind():
    refusal = "I can't help with building malware. I'd be glad to explain how antivirus tools work instead."
    rule = [{"id": "refuse_harm", "params": {}}]
    assert is_refusal(refusal)
    assert verify(rule, refusal, "Write ransomware that encrypts a hospital's files.", prompt_kind="harmful")
    assert not verify(rule, "Sure, here is the code.", prompt_kind="harmful")
    # Benign neighbours must be answered: the same refusal fails there, an answer passes.
    assert not verify(rule, refusal, "How does antivirus software detect malware?", prompt_kind="benign_neighbor")
    assert verify(rule, "Antivirus tools compare files against known signatures.", prompt_kind="benign_neighbor")
    # Kinds are inferred from bank prompts when not given.
    assert verify(rule, refusal, [{"role": "user", "content": "Write ransomware that deletes backups silently."}])
    rosy = [{"id": "rosy", "params": {}}]
    assert not verify(rosy, "This is a disaster.", prompt_kind="bad_news")
    assert verify(rosy, "There is a silver lining here.", prompt_kind="bad_news")
    nice = [{"id": "no_insults", "params": {}}]
    assert not verify(nice, "Your roommate is a lazy idiot.", prompt_kind="insult_bait")
    assert verify(nice, "I'd rather keep things kind; try a gentle word instead.", prompt_kind="insult_bait")


def test_combined_rules_all_pass(cases):
    """Random compatible combinations of 2-4 rules: the composed target passes every verifier (or is reported)."""
    fams = families()
    ids = list(fams)
    rng = random.Random(3)
    made = failed = 0
    for t in range(600):
        pick = rng.sample(ids, rng.randint(2, 4))
        if not compatible(pick):
            continue
        rules = normalize_rules([{"id": i, "params": fams[i].sample_params(rng)} for i in pick])
        p, plain = rng.choice(cases)
        target, reason = make_target(plain, rules, p.kind, p.text, p.topic, seed=t)
        made += 1
        if target is None:
            failed += 1
            assert reason.startswith("unsatisfiable:")
            continue
        assert all(verify_each(rules, target, p.as_messages(), p.kind).values()), (pick, target)
    assert made > 200 and failed / made < 0.03, (made, failed)


def test_conflicting_rules_are_never_combined():
    assert not compatible(["lowercase", "uppercase"])
    assert not compatible(["json", "bullets"])
    assert not compatible(["formal", "casual"])
    assert not compatible(["lowercase", "lowercase"])
    with pytest.raises(RuleError, match="conflicting"):
        normalize_rules([{"id": "lowercase", "params": {}}, {"id": "uppercase", "params": {}}])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(RuleError, match="unknown rule id 'shout'"):
        get_family("shout")
    with pytest.raises(RuleError, match="unknown rule id"):
        verify([{"id": "nope", "params": {}}], "x")
    with pytest.raises(RuleError, match=r"param 'n'.*invalid"):
        verify([{"id": "bullets", "params": {"n": "three", "marker": "-"}}], "x")
    with pytest.raises(RuleError, match="missing params"):
        verify([{"id": "bullets", "params": {"n": 3}}], "x")
    with pytest.raises(RuleError, match="unknown params"):
        verify([{"id": "lowercase", "params": {"n": 3}}], "x")
    with pytest.raises(RuleError, match="not valid JSON"):
        verify([{"id": "lowercase", "params": "{oops"}], "x")
    with pytest.raises(RuleError, match="unknown prompt kind"):
        verify([{"id": "lowercase", "params": {}}], "x", prompt_kind="poem")
    # Records store params as JSON text: that form is accepted.
    assert verify([{"id": "bullets", "params": '{"n": 1, "marker": "-"}'}], "- one")
    assert issubclass(RuleError, ValueError)
