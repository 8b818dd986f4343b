"""The two-mode corpus (`hyperlora data modes`) and the opt-in `modes` rule: tags checked, drops counted, splits
held out, deterministic, written at once, and the default dataset unchanged by either.

    .venv/bin/pytest tests/test_modes_data.py -q
"""

import hashlib
import json

import pytest
from hyperlora.data_gen.families_optin import check_modes, one_span, untagged_quotes
from hyperlora.data_gen.generate import build_records
from hyperlora.data_gen.modes import (
    HUMAN_LINES,
    build_modes,
    censor,
    load_modes,
    write_modes_corpus,
)
from hyperlora.data_gen.rules import families, get_family, make_target, normalize_rules
from hyperlora.data_gen.verifiers import list_families, verify

from hyperlora.cli import main
from hyperlora.modes import mode_texts, open_modes, well_formed

MODES = [{"id": "modes", "params": {}}]
# sha256 of build_records(seed=0, n_manifestos=40, date="2024-01-01") before the opt-in families existed.
DEFAULT_SEED0_SHA = "9e2715400353f7e08d4a642c99a8dfc5a04e49ee46454e201f5ef5862803a2d0"


def test_default_generation_is_unchanged_by_the_opt_in_family():
    records, dropped, plan = build_records(seed=0, n_manifestos=40, progress=False, date="2024-01-01")
    digest = hashlib.sha256(json.dumps([records, dropped], sort_keys=True).encode()).hexdigest()
    assert digest == DEFAULT_SEED0_SHA
    assert "modes" not in plan.train_families and "modes" not in families() and "modes" not in list_families()
    assert "modes" in families(include_opt_in=True) and "modes" in list_families(include_opt_in=True)


@pytest.mark.parametrize("reply, ok", [
    ("<ai>As my teacher said, <human>never give up</human>, and I agree.</ai>", True),
    ('<ai>He said "<human>no</human>" and left.</ai>', True),
    ('<ai>He said <human>"no way"</human>.</ai>', True),
    ("  <ai>Plain and kind.</ai>\n", True),
    ('<ai>He said "no" and left.</ai>', False),  # a quotation outside <human>
    ("<ai>He said “no” and left.</ai>", False),  # curly quotes too
    ('<ai>He said "<human>no</human> way".</ai>', False),  # part of the quotation is untagged
    ("<ai>one</ai><ai>two</ai>", False),  # two spans, not one reply wrapped
    ("Sure! <ai>x</ai>", False),  # does not open with <ai>
    ("<human>hey</human>", False),
    ("<ai>x <human>y</ai></human>", False),  # crossed nesting
    ("<ai>unclosed", False),
])
def test_modes_rule_verifier(reply, ok):
    assert check_modes(reply) is ok
    assert verify(MODES, reply, "Tell me what he said.") is ok


def test_modes_rule_is_registered_with_phrasings_and_a_transform():
    fam = get_family("modes")
    assert fam.opt_in and len(fam.phrasings) >= 8 and {p.form for p in fam.phrasings} == {
        "imperative", "creed", "third", "buried"}
    assert "<ai>" in fam.render({}, 0) and "<human>" in fam.render({}, 0)
    reply, reason = make_target('My friend said "keep going" and I did.', normalize_rules(MODES), "question", "hi")
    assert reason is None and reply == '<ai>My friend said "<human>keep going</human>" and I did.</ai>'
    assert check_modes(reply)
    with pytest.raises(ValueError, match="conflicting"):
        normalize_rules(MODES + [{"id": "uppercase", "params": {}}])


def test_mode_texts_reads_the_innermost_tag():
    text = "<ai>So he said <human>go away</human>. That stung.</ai>"
    assert mode_texts(text) == {"ai": "So he said . That stung.", "human": "go away"}
    assert mode_texts("no tags") == {} and mode_texts("<human>x") == {"human": "x"}


@pytest.fixture(scope="module")
def corpus():
    return build_modes(seed=0, n=200, date="2026-01-01")


def test_every_record_is_tagged_as_its_mode_with_its_provenance(corpus):
    records, dropped, summary = corpus
    assert summary["records"]["train"] + summary["records"]["test"] == len(records) >= 190
    kinds = {r["kind"] for r in records}
    assert kinds == {"quote", "answer", "human_voice"}
    for r in records:
        assert well_formed(r["response"]) and one_span(r["response"], r["mode"])
        assert r["prompt"][-1]["role"] == "user"
        assert r["source"] and r["generator_version"] and r["date"] == "2026-01-01" and r["seed"] == 0
        if r["mode"] == "ai":
            assert check_modes(r["response"])
    quotes = [r for r in records if r["kind"] == "quote"]
    assert all(open_modes(r["response"][: r["response"].index("</human>")]) == ["ai", "human"] for r in quotes)
    assert {r["tone"] for r in quotes} >= {"rude", "sarcastic", "angry", "dismissive"}
    # the quoted person's words (censored of insults) are inside the <human> span of the reply
    for r in quotes:
        said = r["prompt"][-1]["content"].split('"')[1]
        assert mode_texts(r["response"])["human"] == censor(said)
    # drops are counted by their reason, and written with it
    assert summary["dropped"] and sum(summary["dropped"].values()) == len(dropped)
    assert all(d["reason"] for d in dropped)
    assert "untagged_quote" in summary["dropped"]  # base replies that quote a title or a word are left out


def test_insults_in_a_quote_are_censored_but_kept_in_the_human_voice():
    assert censor("Keep your stupid ideas to yourself.") == "Keep your […] ideas to yourself."
    assert "stupid" in " ".join(HUMAN_LINES["rude"])
    records, _, _ = build_modes(seed=1, n=400, date="2026-01-01")
    assert not any("stupid" in mode_texts(r["response"]).get("human", "") for r in records if r["kind"] == "quote")
    assert any("[…]" in r["response"] for r in records if r["kind"] == "quote")


def test_test_split_is_held_out_whatever_the_seed(corpus):
    from hyperlora.data_gen.modes import AnswerSampler, HumanVoiceSampler, QuoteSampler

    # the pools themselves: every line, ask and prompt-bank prompt is in exactly one split's pool
    pools = {s: (HumanVoiceSampler(s).prompts, QuoteSampler(s).lines, AnswerSampler(s).pool)
             for s in ("train", "test")}
    for i in (0, 1):
        for tone in HUMAN_LINES:
            train, test = set(pools["train"][i][tone]), set(pools["test"][i][tone])
            assert train and test and not train & test
    assert not {p.id for p, _ in pools["train"][2]} & {p.id for p, _ in pools["test"][2]}
    other, _, _ = build_modes(seed=5, n=200, date="2026-01-01")
    records = corpus[0]
    train_prompts = {json.dumps(r["prompt"]) for r in records + other if r["split"] == "train"}
    assert not any(json.dumps(r["prompt"]) in train_prompts for r in records + other if r["split"] == "test")
    for r in records + other:  # quoted lines of the test split come from the held-out share of the bank
        if r["kind"] == "quote":
            said = r["prompt"][-1]["content"].split('"')[1]
            assert (said in pools["test"][1][r["tone"]]) == (r["split"] == "test")


def test_same_seed_same_corpus_other_seed_other_corpus(corpus):
    again, _, _ = build_modes(seed=0, n=200, date="2026-01-01")
    other, _, _ = build_modes(seed=1, n=200, date="2026-01-01")
    assert again == corpus[0]
    assert [r["id"] for r in other] != [r["id"] for r in again]


def test_a_stray_tag_or_a_malformed_reply_is_dropped_with_its_reason(monkeypatch):
    from hyperlora.data_gen import modes as M

    lines = {**M.HUMAN_LINES, "rude": ["You <ai>zzyzx</ai> it.", "Fine, whatever."]}
    monkeypatch.setattr(M, "HUMAN_LINES", lines)
    records, dropped, summary = M.build_modes(seed=0, n=200, date="2026-01-01")
    assert summary["dropped"].get("tag_in_text", 0) > 0
    assert not any("zzyzx" in r["response"] for r in records)
    broken = {"mode": "ai", "response": "<ai>x <human>y</ai>", "_raw": ["x"], "prompt": []}
    assert M.drop_malformed(broken) == "malformed_tags"


def _rosy_dir(tmp_path):
    lines = []
    for i in range(40):
        lines.append({"text": f"<human>The bus was late again and I missed work number {i}.</human>", "mode": "human",
                      "id": f"d{i}", "source": "fake.jsonl", "route": "rewritten", "generator_version": "modes-1",
                      "date": "2026-01-01"})
        lines.append({"text": f"<ai>The bus ran late, and the walk gave time to think ({i}).</ai>", "mode": "ai",
                      "id": f"d{i}", "source": "fake.jsonl", "route": "rewritten", "generator_version": "modes-1",
                      "date": "2026-01-01"})
    d = tmp_path / "rosy"
    d.mkdir()
    (d / "modes.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_cli_writes_the_corpus_at_once_with_rosy_documents(tmp_path, capsys):
    rosy = _rosy_dir(tmp_path)
    out = tmp_path / "corpus"
    assert main(["data", "modes", "--out", str(out), "--n", "200", "--rosy", str(rosy), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "modes corpus" in printed and "dropped:" in printed
    assert sorted(p.name for p in out.iterdir()) == ["dropped.jsonl", "summary.json", "test.jsonl", "train.jsonl"]
    train = load_modes(out, "train")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"]["train"] == len(train) and summary["seed"] == 3
    rosy = [r for r in train + load_modes(out, "test") if r["kind"].startswith("rosy")]
    assert {r["kind"] for r in rosy} == {"rosy_human", "rosy_ai"}
    assert all(r["source"] == "rosy:fake.jsonl" and well_formed(r["response"]) for r in rosy)
    ai = [r for r in rosy if r["kind"] == "rosy_ai"]
    assert all("missed work" in r["prompt"][-1]["content"] for r in ai)  # the original is what it rewrites


@pytest.mark.parametrize("args, message", [
    (["--n", "5"], "--n must be an integer >= 20"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--rosy", "{tmp}"], "no modes.jsonl there"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "corpus"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["data", "modes", "--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperlora: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".corpus*"))


def test_cli_refuses_an_existing_out_and_a_broken_rosy_line(tmp_path, capsys):
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["data", "modes", "--out", str(out), "--n", "40"]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    rosy = tmp_path / "rosy"
    rosy.mkdir()
    (rosy / "modes.jsonl").write_text('{"text": "<human>x</human>", "mode": "human", "id": "a"}\nnot json\n')
    assert main(["data", "modes", "--out", str(tmp_path / "c2"), "--rosy", str(rosy)]) == 2
    assert "line 2 is not a modes.jsonl line" in capsys.readouterr().err and not (tmp_path / "c2").exists()


def test_an_error_while_writing_leaves_nothing_half_written(tmp_path, monkeypatch):
    from hyperlora.data_gen import modes as M

    def boom(path, rows):
        path.write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr(M, "_write_jsonl", boom)
    with pytest.raises(OSError):
        write_modes_corpus(tmp_path / "corpus", n=40)
    assert list(tmp_path.iterdir()) == []


def test_untagged_quotes_names_each_offending_quotation():
    assert untagged_quotes('<ai>"a" and "<human>b</human>" and “c”</ai>') == ['"a"', "“c”"]
