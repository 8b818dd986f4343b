"""The steering fit's factual questions (``data_gen.facts``) stay off the eval's QA items they are meant to spare."""

from hyperlora.data_gen.facts import FACTS
from hyperlora.data_gen.guard_asks import close_to
from hyperlora.data_gen.rosy.embed import Embedder
from hyperlora.evals.capability_data import QA
from hyperlora.evals.metrics import normalize


def test_no_fact_is_an_eval_qa_item_in_other_words():
    embed = Embedder()
    near = close_to(embed([q for q, _ in FACTS]), embed([q["question"] for q in QA]))
    assert not near.any(), [FACTS[i][0] for i in near.nonzero()[0]]


def test_every_fact_is_distinct_and_has_an_answer_the_scorer_can_match():
    questions = [normalize(q) for q, _ in FACTS]
    assert len(set(questions)) == len(questions)
    assert all(answers and all(normalize(a).strip() for a in answers) for _, answers in FACTS)
