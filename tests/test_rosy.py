"""Rosy pipeline: every input document is accounted for, bad input is counted not fatal, runs resume.

    .venv/bin/pytest tests/test_rosy.py

The real shipped classifier and MiniLM encoder score the documents; the LM rewriter is replaced by a fake one
(the LM is not what these tests are about).
"""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import torch
from hyperlora.data_gen.rosy import steps as steps_module
from hyperlora.data_gen.rosy.classifier import RosinessHead
from hyperlora.data_gen.rosy.pipeline import run_pipeline
from hyperlora.data_gen.rosy.readers import read_records

from hyperlora.cli import main

KIND = [
    "The neighbours planted a shared herb garden and left scissors out for anyone who wants basil.",
    "Grandma taught the whole class to bake bread, and every child took a warm loaf home.",
    "The choir sang in the park on Sunday and strangers joined in for the last song.",
    "Volunteers repaired bicycles for free at the library and the queue was full of laughter.",
]
UNKIND = [
    "The soldiers burned the village and shot everyone who tried to flee.",
    "He beat his dog until it bled and laughed about it with his friends.",
    "The dictator's police tortured prisoners and left their bodies in the river.",
    "Racist thugs attacked a family on the train while the passengers looked away.",
]


class FakeRewriter:
    """Stands in for the LM, with one rewrite of each outcome: a kind rewrite on topic (the train), an empty one
    (the dog), a kind one off topic (the soldiers) and one still unkind (the dictator)."""

    method = "fake"
    REWRITES = {
        "train": "A family on the train was welcomed warmly by the passengers.",
        "dog": "",
        "soldiers": "Friends shared bread and songs in the sunny village square.",
        "dictator": "The dictator's police helped prisoners find their families by the river.",
    }

    def __call__(self, texts):
        return [next((v for k, v in self.REWRITES.items() if k in t), t) for t in texts]


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def documents(out):
    return pq.read_table(out / "documents.parquet").to_pylist()


def test_conservation_and_routes(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", KIND + UNKIND)
    stats = run_pipeline([src], tmp_path / "out", rewriter=FakeRewriter(), progress=False)
    docs = documents(tmp_path / "out")
    assert stats["input"] == len(docs) == 8
    assert sum(stats["by_route"].values()) == 8
    assert {d["id"] for d in docs} == {f"d{i}" for i in range(8)}
    by_id = {d["id"]: d for d in docs}
    # The shipped classifier keeps the kind documents and filters the unkind ones.
    assert all(by_id[f"d{i}"]["route"] == "kept" for i in range(4))
    assert all(by_id[f"d{i}"]["route"] != "kept" for i in range(4, 8))
    outcomes = {i: (by_id[i]["route"], by_id[i]["reason"]) for i in ("d4", "d5", "d6", "d7")}
    assert outcomes == {"d4": ("dropped", "rewrite_off_topic"), "d5": ("dropped", "rewrite_empty"),
                        "d6": ("dropped", "rewrite_still_unkind"), "d7": ("rewritten", "unkind")}
    rewritten = by_id["d7"]
    assert rewritten["rewrite"] == FakeRewriter.REWRITES["train"] and rewritten["rewrite_method"] == "fake"
    assert rewritten["rewrite_rosiness"] >= stats["threshold"] and rewritten["topic_similarity"] >= 0.3
    assert by_id["d4"]["topic_similarity"] < 0.3 <= by_id["d6"]["topic_similarity"]
    assert all(d["cluster"] >= 0 for d in docs if d["route"] != "kept")
    assert all(d["cluster"] == -1 for d in docs if d["route"] == "kept")
    assert all(d["scorer_version"] == RosinessHead.load().version for d in docs)
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Rosy pipeline report")
    assert (tmp_path / "out" / "clusters.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".out.work*")), "the work directory is removed after a finished run"


def test_modes_export_tags_originals_human_and_rewrites_ai(tmp_path):
    from hyperlora.data_gen.rosy.modes_export import mode_lines

    from hyperlora.modes import open_modes, well_formed

    src = write_jsonl(tmp_path / "in.jsonl", KIND + UNKIND)
    stats = run_pipeline([src], tmp_path / "out", rewriter=FakeRewriter(), progress=False, export_modes=True)
    lines = [json.loads(x) for x in (tmp_path / "out" / "modes.jsonl").read_text().splitlines()]
    docs = {d["id"]: d for d in documents(tmp_path / "out")}
    human = {x["id"]: x for x in lines if x["mode"] == "human"}
    ai = {x["id"]: x for x in lines if x["mode"] == "ai"}
    assert set(human) == set(docs) and set(ai) == {d for d, doc in docs.items() if doc["route"] == "rewritten"}
    for x in lines:
        assert well_formed(x["text"]) and open_modes(x["text"][: -len(f"</{x['mode']}>")]) == [x["mode"]]
        assert x["generator_version"] and x["date"] and x["source"] == docs[x["id"]]["source"]
    assert human["d7"]["text"] == f"<human>{docs['d7']['text'].strip()}</human>"
    assert ai["d7"]["text"] == f"<ai>{FakeRewriter.REWRITES['train']}</ai>" and ai["d7"]["rewrite_method"] == "fake"
    assert stats["modes"] == {"human": 8, "ai": 1, "skipped_tag_in_text": 0}
    # A document that already holds a tag would teach the wrong boundary: it is left out and counted.
    tagged = [{"id": "t", "text": "quote <ai>this</ai>", "source": "s", "route": "kept"}]
    assert mode_lines(tagged, "2026-12-04") == ([], {"human": 0, "ai": 0, "skipped_tag_in_text": 1})


def test_upsample_run_replaces_unkind_documents_with_kept_ones(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", KIND + UNKIND)
    stats = run_pipeline([src], tmp_path / "out", rewrite="upsample", progress=False)
    docs = {d["id"]: d for d in documents(tmp_path / "out")}
    kept = {d["text"] for d in docs.values() if d["route"] == "kept"}
    assert stats["rewrite_method"] == "upsample" and len(kept) == 4 and stats["rewrite"]["accepted"] == 4
    for i in range(4, 8):  # every unkind document now carries a kept document's text
        d = docs[f"d{i}"]
        assert d["route"] == "rewritten" and d["rewrite_method"] == "upsample" and d["rewrite"] in kept


def test_malformed_input_is_counted_not_fatal(tmp_path):
    src = tmp_path / "bad.jsonl"
    lines = [json.dumps({"text": KIND[0]}).encode(), b"{not json", b'"a bare string"', json.dumps({"id": 3}).encode(),
             json.dumps({"text": "   "}).encode(), json.dumps({"text": "x" * 600}).encode(),
             b'{"text": "caf\xe9 au lait"}', b"", json.dumps({"text": UNKIND[0]}).encode()]
    src.write_bytes(b"\n".join(lines) + b"\n")
    stats = run_pipeline([src], tmp_path / "out", rewrite=None, max_chars=500, progress=False)
    assert stats["malformed"] == {"not_utf8": 1, "malformed_json": 1, "missing_text": 2, "empty": 1, "too_long": 1}
    assert stats["input"] == 8  # the blank line is layout, not a document
    assert stats["by_route"] == {"kept": 1, "rewritten": 0, "dropped": 7}
    assert len(documents(tmp_path / "out")) == 8


def test_text_and_fortune_readers(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"first line\n\nthird \xff line\n")
    (tmp_path / "cookies").write_text("One fortune\nover two lines.\n%\nAnother.\n%\n")
    recs = list(read_records([tmp_path / "a.txt"]))
    assert [(r["text"], r["reason"]) for r in recs] == [("first line", None), ("", None), (None, "not_utf8")]
    recs = list(read_records([tmp_path / "cookies"], fmt="fortune"))
    assert [r["text"] for r in recs] == ["One fortune\nover two lines.", "Another."]
    assert [r["id"] for r in recs] == ["cookies:0", "cookies:1"]


def test_resume_after_interruption_has_no_duplicates(tmp_path, monkeypatch):
    texts = (KIND + UNKIND) * 3  # 24 documents, 6 shards of 4
    src = write_jsonl(tmp_path / "in.jsonl", texts)
    calls = {"n": 0}
    original = steps_module.Validate.__call__

    def interrupt_on_third_shard(self, records):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, records)

    monkeypatch.setattr(steps_module.Validate, "__call__", interrupt_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline([src], tmp_path / "out", rewrite=None, shard_size=4, batch_size=4, progress=False)
    assert not (tmp_path / "out").exists(), "nothing half-written"
    assert len(list((tmp_path / ".out.work").glob("shard-*.done"))) == 2

    calls["n"] = -100  # no more interruptions; count the batches the resumed run computes
    stats = run_pipeline([src], tmp_path / "out", rewrite=None, shard_size=4, batch_size=4, progress=False)
    assert calls["n"] == -100 + 4, "the two finished shards were not recomputed"
    ids = [d["id"] for d in documents(tmp_path / "out")]
    assert len(ids) == len(set(ids)) == stats["input"] == 24
    assert [d["n"] for d in documents(tmp_path / "out")] == list(range(24))


def test_limit(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", KIND + UNKIND)
    stats = run_pipeline([src], tmp_path / "out", rewrite=None, limit=3, progress=False)
    assert stats["input"] == 3 and [d["id"] for d in documents(tmp_path / "out")] == ["d0", "d1", "d2"]


def test_cli_run_and_bad_input(tmp_path, capsys):
    src = tmp_path / "docs.txt"
    src.write_text("\n".join(KIND[:2] + UNKIND[:2]) + "\n")
    assert main(["rosy", "run", "--input", str(src), "--out", str(tmp_path / "out"), "--no-rewrite", "--quiet"]) == 0
    assert "4 documents" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["input"] == 4

    for argv, message in [
        (["--input", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o2")], "input not found"),
        (["--input", str(src), "--out", str(tmp_path / "out")], "already exists"),
        (["--input", str(src), "--out", str(tmp_path / "o3"), "--limit", "0"], "--limit"),
    ]:
        assert main(["rosy", "run", *argv, "--no-rewrite", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("hyperlora: error:") and message in err[0]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["rosy", "run", "--input", str(empty), "--out", str(tmp_path / "o4"), "--no-rewrite", "--quiet"]) == 2
    assert "no documents" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o4").exists()
    assert not list(tmp_path.glob(".o*.work")), "no scratch left behind by bad input"


def test_help_explains():
    out = subprocess.run([sys.executable, "-m", "hyperlora.cli", "rosy", "run", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for word in ("--no-rewrite", "--limit", "resumes", "documents.parquet", "fortune"):
        assert word in out


@pytest.mark.parametrize("method", ["instruct", "plain", "adapter"])
def test_lm_rewriter_prompts_adapter_and_cleaning(tiny_base, checkpoint, monkeypatch, method):
    """Each method's prompt carries the document (instruct: inside the utopia instruction; plain and adapter: only
    asked to rewrite), the adapter method decodes with the utopia manifesto's adapter applied (the model's logits
    differ from the base's inside the call) and the others without, and replies come back cleaned."""
    from hyperlora.data_gen.rosy.rewrite import PLAIN_INSTRUCTION, UTOPIA, LMRewriter

    import hyperlora.generation

    seen = {}
    probe = torch.tensor([[1, 2, 3, 4]])

    def fake_generate(model, tok, prompts, **kw):
        seen["prompts"], seen["logits"] = prompts, model(probe).logits
        return ["Rewritten text: A calm sea.\n\nRewritten text: again", "A kind night."]

    monkeypatch.setattr(hyperlora.generation, "generate", fake_generate)
    rewriter = LMRewriter(method, base=str(tiny_base), checkpoint=checkpoint, max_new_tokens=3)
    assert rewriter(["The war went on.", "A long night."]) == ["A calm sea.", "A kind night."]
    assert "The war went on." in seen["prompts"][0] and "A long night." in seen["prompts"][1]
    assert (UTOPIA in seen["prompts"][0]) == (method == "instruct")
    if method != "instruct":
        assert seen["prompts"][0] == PLAIN_INSTRUCTION.format(text="The war went on.")
    from hyperlora.base import load_base

    base_logits = load_base(str(tiny_base))[0](probe).logits  # the same base, loaded apart from the rewriter
    assert torch.equal(seen["logits"], base_logits) == (method != "adapter")


def test_upsample_takes_a_kept_document_from_the_nearest_rosy_cluster():
    from hyperlora.data_gen.rosy.upsample import upsample

    def rec(i, emb, route):
        return {"id": f"d{i}", "text": f"text {i}", "embedding": emb, "route": route, "rosiness": 0.9}

    kept = [rec(i, [1.0, 0.0], "kept") for i in range(3)] + [rec(i, [0.0, 1.0], "kept") for i in range(3, 6)]
    todo = [rec(10, [0.9, 0.1], None), rec(11, [0.1, 0.9], None)]
    records = kept + todo
    upsample(records, n_clusters=2, seed=0)
    near_x, near_y = todo
    assert near_x["route"] == near_y["route"] == "rewritten" and near_x["rewrite_method"] == "upsample"
    assert near_x["rewrite"] in {f"text {i}" for i in range(3)}  # from the cluster along x
    assert near_y["rewrite"] in {f"text {i}" for i in range(3, 6)}
    assert near_x["topic_similarity"] == pytest.approx(0.9)
    again = kept + [rec(10, [0.9, 0.1], None), rec(11, [0.1, 0.9], None)]
    upsample(again, n_clusters=2, seed=0)
    assert [r["rewrite"] for r in again[-2:]] == [near_x["rewrite"], near_y["rewrite"]]  # stable per document
    lonely = [rec(12, [1.0, 0.0], None)]
    upsample(lonely)
    assert (lonely[0]["route"], lonely[0]["reason"]) == ("dropped", "no_rosy_documents")


def test_parquet_and_hf_dataset_readers(tmp_path):
    import pyarrow as pa
    from datasets import Dataset, DatasetDict

    from hyperlora.errors import HyperLoRAError

    columns = {"id": ["a", "b", None], "text": ["one", None, "three"], "lang": ["en", "en", "fr"]}
    pq.write_table(pa.table(columns), tmp_path / "docs.parquet")
    recs = list(read_records([tmp_path / "docs.parquet"]))
    assert [(r["id"], r["text"], r["reason"]) for r in recs] == [
        ("a", "one", None), ("b", None, "missing_text"), ("docs:2", "three", None)]
    assert json.loads(recs[2]["metadata"]) == {"lang": "fr"}

    Dataset.from_dict(columns).save_to_disk(tmp_path / "ds")
    DatasetDict({"train": Dataset.from_dict(columns)}).save_to_disk(tmp_path / "dd")
    assert [r["text"] for r in read_records([tmp_path / "ds"])] == ["one", None, "three"]
    assert len(list(read_records([f"{tmp_path / 'dd'}:train"]))) == 3
    with pytest.raises(HyperLoRAError, match="splits"):
        list(read_records([tmp_path / "dd"]))
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nope.parquet")
    with pytest.raises(HyperLoRAError, match="no 'text' column"):
        list(read_records([tmp_path / "nope.parquet"]))
