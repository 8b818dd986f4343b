"""scripts/pass_rate.py's paired comparison of two checkpoints (``--cases-out`` / ``--against``), on written files:
the held-out cases and, with ``--qa``, the QA items, each paired with the other run's.

    .venv/bin/pytest tests/test_pass_rate.py -q
"""

import json

import pytest

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
