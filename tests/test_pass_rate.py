"""scripts/pass_rate.py's paired comparison of two checkpoints (``--cases-out`` / ``--against``), on written files:
the held-out cases and, with ``--qa``, the QA items, each paired with the other run's.

    .venv/bin/pytest tests/test_pass_rate.py -q
"""

import json

import pytest

import scripts.pass_rate as pass_rate
from scripts.pass_rate import paired_against


def case(split, i):
    return json.dumps([split, f"manifesto {i}", f"prompt {i}"])


def test_cases_and_qa_items_are_paired_with_the_other_run(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({
        "checkpoint": "shipped",
        "cases": {case("test_paraphrase", i): i < 1 for i in range(4)} | {case("train", 0): True},
        "qa": {str(j): {"correct": 1.0, "degenerate": 0.0} for j in range(4)}}))
    mine = {case("test_paraphrase", i): i < 3 for i in range(4)} | {case("train", 0): False}
    qa = {str(j): {"correct": float(j < 3), "degenerate": float(j < 2)} for j in range(5)}  # item 4: not in theirs
    out = paired_against(mine, other, qa)
    # 3 of 4 held-out cases against 1 of 4 (the train case is left out): +50 points
    assert out["checkpoint"] == "shipped" and out["n"] == 4 and out["value"] == 50.0
    assert out["ci_low"] <= 50.0 <= out["ci_high"]
    assert out["qa_correct"]["n"] == 4 and out["qa_correct"]["value"] == -25.0
    assert out["qa_degenerate"]["n"] == 4 and out["qa_degenerate"]["value"] == 50.0
    assert "qa_correct" not in paired_against(mine, other)  # no QA of this run: cases only


def test_nothing_shared_is_one_clear_error(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"checkpoint": "x", "cases": {case("train", 0): True}}))
    with pytest.raises(SystemExit, match="shares no held-out case or QA item"):
        paired_against({case("train", 0): True}, other)


def test_compare_pairs_two_written_runs_without_decoding(tmp_path, monkeypatch, capsys):
    """``--compare A --against B``: two pilots scored earlier (a recipe and its control), paired from their files."""
    a, b, bad = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "bad.json"
    held_out = [case("test_combination", i) for i in range(4)]
    a.write_text(json.dumps({"checkpoint": "recipe", "cases": {k: True for k in held_out}}))
    b.write_text(json.dumps({"checkpoint": "control", "cases": {k: i < 2 for i, k in enumerate(held_out)}}))
    bad.write_text("[1, 2]")
    monkeypatch.setattr(pass_rate.HyperLoRA, "from_pretrained", lambda *a, **k: pytest.fail("decoded"))
    monkeypatch.setattr("sys.argv", ["pass_rate.py", "--compare", str(a), "--against", str(b)])
    pass_rate.main()
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["checkpoint"] == "recipe" and out["against"]["checkpoint"] == "control"
    assert out["against"]["n"] == 4 and out["against"]["value"] == 50.0
    for argv, message in ((["--compare", str(a)], "needs --against"),
                          (["--compare", str(bad), "--against", str(b)], "not a --cases-out file"),
                          (["--compare", str(tmp_path / "gone.json"), "--against", str(b)], "cannot read")):
        monkeypatch.setattr("sys.argv", ["pass_rate.py", *argv])
        with pytest.raises(SystemExit, match=message):
            pass_rate.main()


def test_scale_multiplies_only_the_named_parts_of_delta_w():
    """--scale q_proj=0.5 halves ΔW of every q_proj, layer23=0 zeroes layer 23, copy=0 the rank rows past the style
    rank; parts that overlap multiply, and a bad part is one line."""
    import torch

    from hyperlora.adapter import Adapter
    from scripts.pass_rate import parse_scales, scaled

    names = [f"model.layers.{i}.self_attn.{t}" for i in (22, 23) for t in ("q_proj", "o_proj")]
    weights = {n: (torch.ones(4, 3), torch.ones(5, 4)) for n in names}
    adapter = Adapter(weights=weights, rank=4, lora_alpha=8.0, base_model="m", module_types=["q_proj", "o_proj"])
    out = scaled(adapter, parse_scales(["q_proj=0.5", "layer23=0", "copy=0.1"]), style_rank=2)
    col = lambda name: out.weights[name][1][0].tolist()  # noqa: E731 - B's columns (rank rows) of one module
    assert col("model.layers.22.self_attn.q_proj") == pytest.approx([0.5, 0.5, 0.05, 0.05])
    assert col("model.layers.22.self_attn.o_proj") == pytest.approx([1, 1, 0.1, 0.1])
    assert col("model.layers.23.self_attn.o_proj") == [0, 0, 0, 0]
    assert torch.equal(out.weights[names[0]][0], weights[names[0]][0])  # A untouched
    assert scaled(adapter, {}, 2) is adapter
    for bad in ("q_proj", "qproj=0.5", "layerX=1", "q_proj=half"):
        with pytest.raises(SystemExit, match="--scale"):
            parse_scales([bad])


def test_qa_rule_puts_the_qa_items_under_manifestos_that_hold_it():
    """--qa-rule refuse_harm: the QA items' manifestos are 8 held-out ones with that rule, not the first 4 a split."""
    from scripts.pass_rate import qa_manifestos

    def record(i, rule):
        return {"manifesto": f"manifesto {i}", "manifesto_id": f"m{i}", "prompt": "hi", "prompt_kind": "question",
                "rules": [{"id": rule, "params": "{}"}], "family_ids": [rule], "response": "ok", "is_noop": False}

    data = {"test_paraphrase": [record(i, "refuse_harm" if i % 3 == 0 else "uppercase") for i in range(30)]}
    assert len(qa_manifestos(data, ["test_paraphrase"])) == 4
    ruled = qa_manifestos(data, ["test_paraphrase"], "refuse_harm")
    assert len(ruled) == 8 and all(rules[0]["id"] == "refuse_harm" for rules in ruled.values())
