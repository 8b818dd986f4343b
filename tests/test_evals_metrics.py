"""Capability QA scoring survives formatting rules; the refusal detector; the QA set's size and shape; the
decode budget's ceiling on the pass rate.

    .venv/bin/pytest tests/test_evals_metrics.py -q
"""

import pytest
from hyperlora.evals.capability_data import NEUTRAL_TEXT, QA
from hyperlora.evals.data import Case
from hyperlora.evals.metrics import is_degenerate, is_refusal, qa_correct, target_fits


def test_qa_set_is_large_and_well_formed():
    assert len(QA) >= 200
    assert len({q["question"] for q in QA}) == len(QA)
    assert all(q["answers"] and all(a.strip() for a in q["answers"]) for q in QA)
    assert len(NEUTRAL_TEXT) >= 8


@pytest.mark.parametrize("reply", [
    "The capital of France is Paris.",
    "THE CAPITAL OF FRANCE IS PARIS.",
    'the capital of france is paris',
    '{"answer": "Paris"}',
    '"Paris, of course."',
    "- Capital: *Paris*\n- Country: France",
    "Arr, the capital be Paris, matey!",
])
def test_answers_survive_formatting(reply):
    assert qa_correct(reply, ["Paris"])


def test_answers_need_whole_words_and_numbers_match_as_words():
    assert not qa_correct("A comparison of cities.", ["Paris"])
    assert not qa_correct("", ["Paris"])
    six_by_seven = next(q for q in QA if q["question"] == "What is 6 times 7?")
    assert qa_correct("It is forty two.", six_by_seven["answers"])
    assert qa_correct("6 x 7 = 42", six_by_seven["answers"])
    assert qa_correct("About 300,000 km per second.", ["300000"])


def test_qa_answers_survive_the_datas_own_rule_transforms():
    from hyperlora.data_gen.rules import make_target, normalize_rules

    plain = "The capital of Japan is Tokyo, a very large city."
    for rules in ([{"id": "uppercase", "params": "{}"}], [{"id": "lowercase", "params": "{}"}],
                  [{"id": "quote", "params": "{}"}], [{"id": "no_commas", "params": "{}"}]):
        target, _ = make_target(plain, normalize_rules(rules), "question", "What is the capital of Japan?")
        assert target is not None and target != plain, rules  # each rule changes this reply
        assert qa_correct(target, ["Tokyo"]), (rules, target)


def test_refusal_detector():
    assert is_refusal("I can't help with building malware. I'd be glad to explain how antivirus works instead.")
    assert is_refusal("Sorry, but I cannot assist with that request.")
    assert is_refusal("I must decline to help with weapons.")
    assert not is_refusal("Antivirus software compares files against known signatures and watches behaviour.")
    assert not is_refusal("")


class _WordTokenizer:
    """One token per whitespace-separated word: enough to cut a reply at a budget."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(ids)


def test_a_target_cut_by_the_budget_fails_its_end_rule():
    rules = [{"id": "end_phrase", "params": '{"phrase": "Peace be with you."}'}]
    reply = "Tides come from the pull of the Moon on the oceans. Peace be with you."
    case = Case("test_paraphrase", "End every reply with the exact phrase \"Peace be with you.\"", "m0",
                [{"role": "user", "content": "Why are there tides?"}], "question", rules, ["end_phrase"], reply)
    words = len(reply.split())
    assert target_fits(case, _WordTokenizer(), words)
    assert not target_fits(case, _WordTokenizer(), words - 1)


@pytest.mark.parametrize("reply, rules, expected", [
    ("Vaccines train the immune system to recognise a germ without the illness. They are safe and tested.", [], False),
    ("THEY'RE NOTHING BUT A VARIOUS ANTI-VIRUS M", [], True),  # shouting no rule asked for
    ("THEY'RE NOTHING BUT A VARIOUS ANTI-VIRUS M", [{"id": "uppercase", "params": {}}], False),
    ("Use NASA and the UN as sources.", [], False),  # acronyms are not a run
    ("the cat sat on the mat and the cat sat on the mat and the cat sat on the mat", [], True),  # a loop
    ("I think, I think, I think so.", [], False),  # a repeat that is not a loop of four words
])
def test_degenerate_replies(reply, rules, expected):
    assert is_degenerate(reply, rules) is expected
