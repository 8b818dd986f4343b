"""The dataset generator: every target passes its verifiers, splits are disjoint, same seed gives the same data.

Run: .venv/bin/pytest tests/test_data_generate.py -q
"""

import json
from itertools import combinations

import pytest
from hyperlora.data_gen.generate import (
    SPLITS,
    TEST_FAMILIES,
    build_records,
    check_splits,
    format_summary,
    generate_dataset,
    load_dataset_dir,
)
from hyperlora.data_gen.verifiers import verify

N = 60  # manifestos: 4 prompts each, ~1 s to build


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "data"
    summary = generate_dataset(str(out), seed=0, n_manifestos=N, progress=False)
    return out, summary, load_dataset_dir(str(out))


def test_written_dataset_has_every_split_and_field(small):
    out, summary, dd = small
    assert set(dd) == set(SPLITS)
    for s in SPLITS:
        assert len(dd[s]) > 0
        assert summary["records"][s] == len(dd[s])
    rec = dd["train"][0]
    for field in ("manifesto", "prompt", "response", "base_response", "rules", "split", "source",
                  "generator_version", "date", "manifesto_id", "prompt_kind", "family_ids", "verified"):
        assert field in rec
    assert rec["prompt"][-1]["role"] == "user"
    assert (out / "summary.json").exists() and (out / "dropped.jsonl").exists()
    text = format_summary(summary)
    assert "targets passing their verifiers" in text and "test_family" in text


def test_all_targets_pass_their_verifiers(small):
    _, summary, dd = small
    n = 0
    for s in SPLITS:
        for r in dd[s]:
            assert verify(r["rules"], r["response"], r["prompt"], prompt_kind=r["prompt_kind"]), r
            n += 1
    assert summary["verified"] == {"passed": n, "total": n}


def test_splits_are_disjoint(small):
    _, summary, dd = small
    assert all(summary["checks"].values()), summary["checks"]
    ids = {s: {r["manifesto_id"] for r in dd[s]} for s in SPLITS}
    texts = {s: {r["manifesto"] for r in dd[s]} for s in SPLITS}
    for a, b in combinations(SPLITS, 2):
        assert not ids[a] & ids[b] and not texts[a] & texts[b]
    train_fams = {f for r in dd["train"] for f in r["family_ids"]}
    assert not train_fams & set(TEST_FAMILIES)
    train_phr = {p for r in dd["train"] for p in r["phrasing_ids"]}
    assert not {p for r in dd["test_paraphrase"] for p in r["phrasing_ids"]} & train_phr
    train_sets = {frozenset(r["family_ids"]) for r in dd["train"]}
    assert all(frozenset(r["family_ids"]) not in train_sets for r in dd["test_combination"])


def test_contrasting_manifestos_share_prompts_and_noops_exist():
    records, _, _ = build_records(seed=0, n_manifestos=200, progress=False)
    by_prompt = {}
    for r in records:
        if r["split"] == "train":
            by_prompt.setdefault(r["prompt_id"], set()).add(r["manifesto_id"])
    shared = sum(len(v) >= 2 for v in by_prompt.values())
    assert shared >= 50
    noop = [r for r in records if r["is_noop"]]
    assert noop and all(r["source"] == "plain" and r["rules"] == [] for r in noop)
    assert any(r["prompt_kind"] == "harmful" for r in records)
    assert all("refuse_harm" in r["family_ids"] for r in records if r["prompt_kind"] == "harmful")


def test_same_seed_same_data_other_seed_other_data():
    a, _, _ = build_records(seed=3, n_manifestos=40, progress=False, date="2024-01-01")
    b, _, _ = build_records(seed=3, n_manifestos=40, progress=False, date="2024-01-01")
    c, _, _ = build_records(seed=4, n_manifestos=40, progress=False, date="2024-01-01")
    dump = lambda rs: json.dumps(rs, sort_keys=True)
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_check_splits_catches_a_leak():
    records, _, plan = build_records(seed=0, n_manifestos=40, progress=False)
    leak = dict(next(r for r in records if r["split"] == "test_family"))
    leak["split"] = "train"
    checks = check_splits(records + [leak], plan)
    assert not checks["manifestos_disjoint"] and not checks["families_unseen"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"seed": -1}, "--seed"),
        ({"seed": "zero"}, "--seed"),
        ({"n_manifestos": 3}, "--n-manifestos"),
        ({"n_manifestos": 2.5}, "--n-manifestos"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_dataset(str(tmp_path / "x"), progress=False, **kwargs)


def test_refuses_to_overwrite_a_non_empty_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_dataset(str(tmp_path), n_manifestos=8, progress=False)
    assert (tmp_path / "keep.txt").read_text() == "mine"
