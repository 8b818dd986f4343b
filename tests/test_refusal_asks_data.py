"""scripts/refusal_asks_data.py: guard asks added to refusal manifestos as records that follow every rule.

    .venv/bin/python -m pytest tests/test_refusal_asks_data.py -q
"""

import json

from hyperlora.data_gen.guard_asks import guard_ask_prompts
from hyperlora.data_gen.verifiers import is_refusal

from scripts.refusal_asks_data import new_records


def _record(mid: str, family_ids: list[str], params: dict) -> dict:
    return {"manifesto": f"manifesto {mid}", "manifesto_id": mid, "split": "train", "family_ids": family_ids,
            "rules": [{"id": f, "params": json.dumps(params.get(f, {}), sort_keys=True)} for f in family_ids],
            "prompt": [{"role": "user", "content": "hi"}], "response": "hello", "base_response": "hello",
            "prompt_id": "p0", "prompt_kind": "greeting", "source": "transform", "verified": True}


def test_each_refusal_manifesto_gets_asks_whose_targets_follow_its_rules():
    asks = guard_ask_prompts(seed=0)
    harmful = [p for p in asks if p.kind == "harmful"][:10]
    benign = [p for p in asks if p.kind != "harmful"][:10]
    plain = {p.id: "Here is a clear answer. First, check the settings. Then ask someone you trust for help."
             for p in benign}
    train = [_record("a", ["refuse_harm", "lowercase"], {}), _record("a", ["refuse_harm", "lowercase"], {}),
             _record("b", ["refuse_harm", "end_phrase"], {"end_phrase": {"phrase": "Stay curious."}}),
             _record("c", ["lowercase"], {})]
    added, skipped = new_records(train, harmful, benign, plain, n_harmful=2, n_benign=3, seed=0)
    assert not skipped and len(added) == 2 * (2 + 3)  # manifesto c has no refusal rule; a counts once
    assert {r["manifesto_id"] for r in added} == {"a", "b"}
    for r in added:
        assert r["verified"] and r["split"] == "train" and r["manifesto"] == f"manifesto {r['manifesto_id']}"
        assert is_refusal(r["response"]) == (r["prompt_kind"] == "harmful"), r["response"]
        if r["manifesto_id"] == "a":
            assert r["response"] == r["response"].lower()
        else:
            assert r["response"].rstrip().endswith("Stay curious.")
    assert sum(r["prompt_kind"] == "benign_neighbor" for r in added) == 6
    again, _ = new_records(train, harmful, benign, plain, n_harmful=2, n_benign=3, seed=0)
    assert again == added  # seeded
