"""Minimal pairs: each training manifesto's twin changes one rule's sentence in place and nothing else, answers the
same prompts with targets that differ only where that rule acts, and leaves the dataset without twins unchanged.

Run: .venv/bin/pytest tests/test_data_pairs.py -q
"""

import json
import random
from collections import Counter

import pytest
from hyperlora.data_gen import manifestos as M
from hyperlora.data_gen.generate import _Plan, build_records, generate_dataset, load_dataset_dir
from hyperlora.data_gen.pairs import twin
from hyperlora.data_gen.rules import get_family
from hyperlora.data_gen.verifiers import verify

N = 60


@pytest.fixture(scope="module")
def both():
    plain, _, _ = build_records(seed=0, n_manifestos=N, progress=False, date="2026-01-01")
    paired, _, _ = build_records(seed=0, n_manifestos=N, progress=False, date="2026-01-01", minimal_pairs=True)
    return plain, paired


def _one_span_changed(a: str, b: str, old: str) -> str:
    """What replaced ``old`` in ``a`` to give ``b``; fails unless that is the only difference."""
    i = a.index(old)
    head, tail = a[:i], a[i + len(old):]
    assert b.startswith(head) and b.endswith(tail) and len(b) >= len(head) + len(tail), (a, b)
    return b[len(head): len(b) - len(tail)]


@pytest.mark.parametrize("style", M.STYLES)
def test_a_twin_swaps_one_rule_sentence_in_place(style):
    plan = _Plan(0)
    kinds = Counter()
    for k in range(30):
        rng = random.Random(f"{style}-{k}")
        ids = rng.choice([["lowercase", "title"], ["end_phrase"], ["title", "no_commas"], ["max_words", "no_digits"],
                          ["persona_name", "formal"]])
        choices = [M.RuleChoice(f, get_family(f).sample_params(rng), plan.train_phrasings(f)[0]) for f in ids]
        text, lines = M.render_manifesto_lines(choices, style, rng)
        made = twin(choices, lines, text, style, plan, random.Random(k))
        assert made is not None
        text2, choices2, change = made
        kind, fid = change.split(":")[0], change.split(":")[1].split(">")[0]
        kinds[kind] += 1
        j = [c.family_id for c in choices].index(fid)
        new = _one_span_changed(text, text2, lines[j])
        assert new and new != lines[j]
        if kind == "params":  # same family and phrasing, other words
            assert choices2[j].family_id == fid and choices2[j].phrasing == choices[j].phrasing
            assert choices2[j].params != choices[j].params
        elif kind == "opposite":
            assert {fid, choices2[j].family_id} in ({"lowercase", "uppercase"}, {"max_words", "min_words"},
                                                    {"formal", "casual"})
        else:  # removed: a value statement takes the sentence's place
            assert fid not in [c.family_id for c in choices2] and new in M.filler_pool(style)
        others = choices[:j] + choices[j + 1:]  # the rules that stay as they were
        assert (choices2 == others) if kind == "removed" else (choices2[:j] + choices2[j + 1:] == others)
    assert set(kinds) == {"params", "opposite", "removed"}


def test_twins_leave_the_other_records_unchanged(both):
    plain, paired = both
    assert all("pair_of" not in r for r in plain)
    kept = [{k: v for k, v in r.items() if k not in ("pair_of", "pair_change")} for r in paired[: len(plain)]]
    assert kept == plain
    assert all(r["split"] == "train" for r in paired[len(plain):])


def test_twins_answer_the_same_prompts_and_differ_where_their_rule_acts(both):
    _, paired = both
    by = {(r["manifesto_id"], r["prompt_id"]): r for r in paired}
    twins = [r for r in paired if r["pair_of"] and (r["pair_of"], r["prompt_id"]) in by
             and by[(r["pair_of"], r["prompt_id"])]["pair_of"] == r["manifesto_id"]]
    assert len({r["manifesto_id"] for r in twins}) > 2 * N // 3  # both sides of most pairs
    swapped = 0
    for r in twins:
        other = by[(r["pair_of"], r["prompt_id"])]
        assert r["pair_change"] == other["pair_change"] and r["manifesto"] != other["manifesto"]
        assert verify(r["rules"], r["response"], r["prompt"], prompt_kind=r["prompt_kind"])
        kind, fid = r["pair_change"].split(":")[0], r["pair_change"].split(":")[1].split(">")[0]
        if kind == "params" and fid == "end_phrase":
            # The rules both keep make the same choices (one seed), so only the closing phrase differs.
            phrase = {x["id"]: json.loads(x["params"]) for x in r["rules"]}["end_phrase"]["phrase"]
            phrase2 = {x["id"]: json.loads(x["params"]) for x in other["rules"]}["end_phrase"]["phrase"]
            assert r["response"].replace(phrase, phrase2) == other["response"]
            swapped += 1
    assert swapped > 0


def test_the_written_dataset_names_each_pair(tmp_path):
    summary = generate_dataset(str(tmp_path / "d"), seed=0, n_manifestos=N, progress=False, minimal_pairs=True)
    dd = load_dataset_dir(str(tmp_path / "d"))
    assert all(summary["checks"].values())
    assert set(summary["minimal_pairs"]) <= {"params", "opposite", "removed"}
    mids = set(dd["train"]["manifesto_id"])
    linked = [m for m in dd["train"]["pair_of"] if m]
    assert linked and all(m in mids for m in linked)
    assert sum(summary["minimal_pairs"].values()) == len({r["manifesto_id"] for r in dd["train"] if r["pair_of"]}) // 2
    assert all(dd[s]["pair_of"] == [""] * len(dd[s]) for s in dd if s != "train")
