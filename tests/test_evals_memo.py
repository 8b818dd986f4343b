"""The eval memo: baselines kept between runs, read back only under the same fingerprint, and really used.

    .venv/bin/pytest tests/test_evals_memo.py -q
"""

import json

import pytest
from hyperlora.evals import memo as M
from hyperlora.evals.run import run_eval

from hyperlora.decode import Row


def test_only_rows_without_a_generated_adapter_are_baselines():
    assert M.independent(Row([1, 2]))
    assert M.independent(Row([1, 2], prefix="k"))
    assert M.independent(Row([1, 2], adapter="oracle:abc")) and M.independent(Row([1], adapter="multitask"))
    assert M.independent(Row([1, 2], adapter="reader"))
    for generated in ("gen:abc", "random:abc", "empty"):
        assert not M.independent(Row([1, 2], adapter=generated))


def test_a_rows_key_is_its_content():
    row = Row([1, 2, 3], adapter="oracle:a", seed=4, max_new=9)
    assert M.row_key(row, 0.7) == M.row_key(Row([1, 2, 3], adapter="oracle:a", seed=4, max_new=9), 0.7)
    for other in (Row([1, 2], adapter="oracle:a", seed=4, max_new=9), Row([1, 2, 3], seed=4, max_new=9),
                  Row([1, 2, 3], adapter="oracle:a", seed=5, max_new=9),
                  Row([1, 2, 3], adapter="oracle:a", seed=4, max_new=8)):
        assert M.row_key(other, 0.7) != M.row_key(row, 0.7)
    assert M.row_key(row, 1.0) != M.row_key(row, 0.7)  # the call's temperature, for rows without their own


def test_values_survive_a_new_run_and_fresh_reads_nothing(tmp_path):
    memo = M.Memo(tmp_path, "abc")
    assert memo.get("decode", "k") is None
    memo.put("decode", "k", [5, 6])
    memo.save()
    again = M.Memo(tmp_path, "abc")
    assert again.get("decode", "k") == [5, 6] and again.hits == {"decode": 1}
    assert M.Memo(tmp_path, "abc", enabled=False).get("decode", "k") is None
    assert M.Memo(tmp_path, "other").get("decode", "k") is None
    assert not list(tmp_path.glob("abc/*.tmp"))


def test_the_fingerprint_follows_settings_data_and_reader(tmp_path):
    data, reader = tmp_path / "data", tmp_path / "reader"
    data.mkdir(), reader.mkdir()
    (data / "a.arrow").write_bytes(b"1")
    (reader / "adapter.safetensors").write_bytes(b"r")
    args = dict(cfg={"n": 1}, seeds=3, splits=["test_paraphrase"], data_dir=data, base_model="m", rank=8,
                reader_dir=None, device="cpu")
    key = M.fingerprint(**args)
    assert M.fingerprint(**args) == key
    assert M.fingerprint(**{**args, "cfg": {"n": 2}}) != key
    assert M.fingerprint(**{**args, "seeds": 4}) != key
    assert M.fingerprint(**{**args, "reader_dir": reader}) != key
    (data / "a.arrow").write_bytes(b"2")
    assert M.fingerprint(**args) != key


@pytest.mark.slow
def test_a_second_eval_reads_its_baselines_from_the_memo(tmp_path, monkeypatch):
    """Run 1 (``fresh``: it reads nothing, but it stores) fills the memo; run 2 trains no LoRA and decodes only the
    generated adapters' rows, and what it reads is what it reports: a memo whose baseline replies were all replaced
    makes every baseline say the replacement, while the adapter's replies stay its own."""
    import hyperlora

    monkeypatch.setattr(M, "memo_root", lambda: tmp_path / "memo")
    small = dict(split="test_paraphrase", quick=True, progress=False, max_manifestos=1, n_qa=2, n_refusal=1)
    first = run_eval(tmp_path / "a", fresh=True, **small)
    assert first["meta"]["memo"]["hits"] == {} and not first["meta"]["memo"]["read"]
    assert "every baseline computed here (`--fresh`)" in (tmp_path / "a" / "report.md").read_text()
    (values,) = (tmp_path / "memo").glob("*/values.json")
    kept = json.loads(values.read_text())
    _, tok = hyperlora.load_base()
    said = tok("Memo reply.", add_special_tokens=False)["input_ids"]
    values.write_text(json.dumps({**kept, "decode": {k: said for k in kept["decode"]}}))

    second = run_eval(tmp_path / "b", **small)
    memo = second["meta"]["memo"]
    assert memo["hits"]["loras"] == 1 and memo["hits"]["decode"] >= len(kept["decode"])  # a row may recur
    assert "decode" not in memo["misses"]  # every baseline row came from the memo
    assert second["oracle_lora"]["train_seconds_total"] == \
        first["oracle_lora"]["train_seconds_total"]  # the kept record, not a new training
    for ex1, ex2 in zip(first["meta"]["examples"], second["meta"]["examples"]):
        assert ex2["replies"]["base"] == ex2["replies"]["system_prompt"] == "Memo reply."
        assert ex2["replies"]["adapter"] == ex1["replies"]["adapter"]
    assert "baseline rows read from it" in (tmp_path / "b" / "report.md").read_text()
