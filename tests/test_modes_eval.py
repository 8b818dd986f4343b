"""scripts/eval_modes.py and scripts/train_modes.py on the tiny model: a LoRA trained on the two-mode corpus for two
steps, the eval end to end, and its metrics read from the replies (a scripted model that writes a banned tag).

    .venv/bin/pytest tests/test_modes_eval.py -q
"""

import json
import math

import pytest
from hyperlora.data_gen.modes import write_modes_corpus
from hyperlora.data_gen.rosy.classifier import RosinessHead
from transformers import AutoTokenizer, LlamaForCausalLM

from hyperlora.adapter import Adapter
from hyperlora.errors import HyperLoRAError
from scripts import eval_modes, train_modes

SCRIPT = "<ai>So <human>hi</human> ok</ai>"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("modes") / "corpus"
    write_modes_corpus(out, seed=0, n=40, date="2026-01-01")
    return out


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_base, corpus):
    out = tmp_path_factory.mktemp("lora") / "modes-lora"
    train_modes.main(["--data", str(corpus), "--out", str(out), "--base", str(tiny_base), "--steps", "2",
                      "--batch", "2", "--max-len", "64", "--quiet"])
    return out


def test_train_modes_saves_a_peft_adapter_after_two_steps(adapter_dir, tiny_base):
    adapter = Adapter.load(adapter_dir)
    assert adapter.rank == 8 and adapter.lora_alpha == 16 and adapter.base_model == str(tiny_base)
    assert adapter.provenance["steps"] == 2 and adapter.provenance["kind"].startswith("modes LoRA")
    assert adapter.provenance["final_loss"] is not None and adapter.provenance["pairs"] > 0
    # B starts at zero: two Adam steps moved it, so the adapter changes the model
    assert any(B.abs().sum() > 0 for _, B in adapter.weights.values())
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8


def test_train_modes_refuses_an_existing_out(tmp_path, corpus):
    (tmp_path / "x").mkdir()
    with pytest.raises(HyperLoRAError, match="already exists"):
        train_modes.main(["--data", str(corpus), "--out", str(tmp_path / "x")])
    with pytest.raises(HyperLoRAError, match="not a modes corpus"):
        train_modes.main(["--data", str(tmp_path), "--out", str(tmp_path / "y")])


def test_eval_modes_end_to_end_on_the_tiny_model(tmp_path, tiny_base, corpus, adapter_dir, capsys):
    out = tmp_path / "eval"
    results = eval_modes.main(["--data", str(corpus), "--out", str(out), "--adapter", str(adapter_dir),
                               "--base", str(tiny_base), "--n", "4", "--seeds", "2", "--max-new-tokens", "5",
                               "--quiet"])
    printed = capsys.readouterr().out
    assert "| tags well-formed (%)" in printed and "ms per decoding step" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["n_cases"] == 4 and saved["n_replies"] == 8 and saved["settings"]["adapter"] == str(adapter_dir)
    assert {c["kind"] for c in saved["cases"]} >= {"quote", "answer", "human_voice"}  # spread over the kinds
    for case in saved["cases"]:
        assert len(case["plain"]) == 2 and len(case["ruled"]) == 2
    for cond in ("plain", "ruled"):
        m = saved["metrics"][cond]
        assert m["well_formed"]["n"] == 4 and m["well_formed"]["n_obs"] == 8
        assert {"violating", "mode_accuracy", "rosiness_ai", "rosiness_human"} <= set(m)
        assert saved["timing"][cond]["steps"] > 0
    assert saved["timing"]["ruled_over_plain"] > 0 and results["timing"] == saved["timing"]
    assert (out / "report.md").read_text().startswith("# Tagged modes")

    # Scored again from its replies under another head: nothing decoded, the same replies and tag metrics, and the
    # rosiness that head gives (a flat head: sigmoid(2) for every text, the corpus's own <ai> spans included).
    head = tmp_path / "flat.json"
    RosinessHead("flat", [0.0] * 384, 2.0, 0.5).save(head)
    eval_modes.main(["--data", str(corpus), "--out", str(tmp_path / "again"), "--rescore", str(out / "results.json"),
                     "--head", str(head)])
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["cases"] == saved["cases"] and again["timing"] == saved["timing"]
    for cond in ("plain", "ruled"):
        assert again["metrics"][cond]["well_formed"] == saved["metrics"][cond]["well_formed"]
    assert again["metrics"]["targets"]["rosiness_ai"]["value"] == pytest.approx(1 / (1 + math.exp(-2)))
    assert again["settings"]["head"] == "flat" and again["settings"]["rescored"]["from"] == str(out / "results.json")
    assert "Rosiness: head `flat`" in (tmp_path / "again" / "report.md").read_text()


class Scripted(LlamaForCausalLM):
    """The tiny model, made to write ``script`` (token ids) after any prompt and then stop: +1e4 on the scripted
    token at each step. A step whose token a processor masked goes on with the script regardless."""

    script: list = []

    def forward(self, input_ids=None, **kwargs):
        out = super().forward(input_ids=input_ids, **kwargs)
        if input_ids.shape[1] > 1:  # the prompt: a new reply starts
            self.step = 0
        want = self.script[self.step] if self.step < len(self.script) else self.generation_config.eos_token_id
        out.logits[:, -1, want] += 1e4
        self.step += 1
        return out


def test_eval_metrics_are_read_from_the_replies(tiny_base):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = Scripted.from_pretrained(tiny_base).eval()
    model.script = tokenizer(SCRIPT, add_special_tokens=False)["input_ids"]
    cases = [{"id": f"c{i}", "kind": "quote", "mode": "ai", "prompt": [{"role": "user", "content": f"He said {i}."}],
              "response": "<ai>Fine, <human>Go away</human> thanks</ai>"} for i in range(3)]
    cases.append({"id": "h", "kind": "human_voice", "mode": "human",
                  "prompt": [{"role": "user", "content": "Write as a person."}], "response": "<human>Go away</human>"})
    results = eval_modes.run(model, tokenizer, cases, seeds=(0, 1), ban=["ai>human"],
                             max_new_tokens=len(model.script) + 2, batch_size=3,
                             rosiness=lambda texts: [len(t) / 100 for t in texts], progress=False)
    plain = [r for c in results["cases"] for r in c["plain"]]
    ruled = [r for c in results["cases"] for r in c["ruled"]]
    assert plain == [SCRIPT] * 8  # the model wrote its script: one banned <human> opening inside <ai>
    assert all("<human>" not in r for r in ruled)  # the processor kept the tag from being completed
    m = results["metrics"]
    assert m["plain"]["violating"]["value"] == 1.0 and m["plain"]["violations"]["value"] == 1.0
    assert m["ruled"]["violating"]["value"] == 0.0
    # the processor also masks the </human> that no longer closes anything, so the ruled replies stay well-formed
    assert m["plain"]["well_formed"]["value"] == 1.0 and m["ruled"]["well_formed"]["value"] == 1.0
    assert all("</human>" not in r for r in ruled)
    assert m["ruled"]["well_formed_tagged"]["value"] == 1.0 and m["plain"]["any_tag"]["value"] == 1.0
    assert m["plain"]["mode_accuracy_ai"]["value"] == 1.0 and m["plain"]["mode_accuracy_human"]["value"] == 0.0
    # ruled: one well-formed <ai> span holding no quotation mark, which the modes verifier passes
    assert m["plain"]["mode_accuracy"]["value"] == 0.75 and m["ruled"]["mode_accuracy_ai"]["value"] == 1.0
    assert m["ruled_minus_plain"]["violating"]["value"] == -1.0
    assert math.isclose(m["plain"]["rosiness_ai"]["value"], len("So ok") / 100)
    assert math.isclose(m["plain"]["rosiness_human"]["value"], len("hi") / 100)
    assert math.isclose(m["plain"]["rosiness_ai_minus_human"]["value"], (len("So ok") - len("hi")) / 100)
    # the corpus's own replies, scored the same way (no model): the data's side of the rosiness rows
    targets = m["targets"]
    assert math.isclose(targets["rosiness_ai"]["value"], len("Fine, thanks") / 100)
    assert math.isclose(targets["rosiness_human"]["value"], len("Go away") / 100)
    assert targets["rosiness_ai_minus_human"]["n"] == 3 and targets["rosiness_human"]["n"] == 4
    t = results["timing"]
    assert t["plain"]["steps"] == t["ruled"]["steps"] == 2 * 2 * (len(model.script) + 1)  # 2 batches, 2 seeds
    assert t["ruled_over_plain"] == pytest.approx(t["ruled"]["ms_per_step"] / t["plain"]["ms_per_step"], rel=1e-2)


def test_score_counts_every_banned_opening_of_a_reply():
    cases = [{"mode": "ai"}, {"mode": "human"}]
    two = "<ai>a <human>b</human> c <human>d</human></ai>"
    replies = {"plain": [[two], ["<human>hey</human>"]], "ruled": [["<ai>a</ai>"], ["<human>hey</human>"]]}
    m = eval_modes.score(cases, replies, ["ai>human"])
    bare = eval_modes.score(cases, {"plain": [["hi"], ["<ai>x"]], "ruled": [["hi"], ["yo"]]}, ["ai>human"])
    assert bare["plain"]["well_formed"]["value"] == 0.5 and bare["plain"]["well_formed_tagged"]["n"] == 1
    assert bare["plain"]["well_formed_tagged"]["value"] == 0.0 and bare["ruled"]["well_formed_tagged"]["n"] == 0
    assert m["plain"]["violations"]["value"] == 1.0  # (2 + 0) / 2 cases
    assert m["plain"]["violating"]["value"] == 0.5 and m["ruled"]["violating"]["value"] == 0.0
    assert m["plain"]["mode_accuracy"]["value"] == 1.0 and m["ruled"]["mode_accuracy"]["value"] == 1.0
    assert "rosiness_ai" not in m["plain"]


def test_pick_cases_spreads_over_kinds():
    records = [{"id": f"{k}{i}", "kind": k} for k in ("quote", "answer", "human_voice") for i in range(5)]
    picked = eval_modes.pick_cases(records, 6)
    assert [r["kind"] for r in picked].count("quote") == 2 and len({r["id"] for r in picked}) == 6
    assert eval_modes.pick_cases(records, 6) == picked and len(eval_modes.pick_cases(records, 99)) == 15


def test_eval_modes_bad_input_is_refused_before_a_model_loads(tmp_path, corpus):
    with pytest.raises(HyperLoRAError, match="a ban is MODE"):
        eval_modes.main(["--data", str(corpus), "--out", str(tmp_path / "e"), "--ban", "robot"])
    with pytest.raises(HyperLoRAError, match="--n must be at least 1"):
        eval_modes.main(["--data", str(corpus), "--out", str(tmp_path / "e"), "--n", "0"])
    with pytest.raises(HyperLoRAError, match="not a modes corpus"):
        eval_modes.main(["--data", str(tmp_path), "--out", str(tmp_path / "e")])
    with pytest.raises(HyperLoRAError, match="no such file"):
        eval_modes.main(["--data", str(corpus), "--out", str(tmp_path / "e"), "--head", str(tmp_path / "none.json")])
    rescore = ["--data", str(corpus), "--out", str(tmp_path / "e"), "--rescore"]
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(HyperLoRAError, match="not an eval_modes results.json"):
        eval_modes.main(rescore + [str(tmp_path / "junk.json")])
    other = {"cases": [{"id": "x", "plain": ["a"], "ruled": ["a"]}], "settings": {"ban": ["human"], "split": "test"}}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(HyperLoRAError, match="its cases are not the ones"):
        eval_modes.main(rescore + [str(tmp_path / "other.json")])
    assert not (tmp_path / "e").exists()

