"""Training: the split forward equals the full one, loss falls, and a killed run resumes exactly.

    .venv/bin/pytest tests/test_train.py
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import safetensors.torch
import torch

from hyperlora.errors import HyperLoRAError
from hyperlora.train import (
    TrainConfig,
    batch_for_step,
    lower_hidden,
    opposite_groups,
    per_sequence_mean,
    refusal_asks,
    relative_energy,
    twin_groups,
    upper_hidden,
)
from tests.conftest import tiny_llama, train_config

# A test that runs a real training (a `hyperlora train` subprocess, several seconds each on a CPU) is slow:
# `pytest -m "not slow"` leaves it out of the quick loop; `make test` runs it.
slow = pytest.mark.slow


def _run(config, *overrides, wait=True):
    cmd = [sys.executable, "-m", "hyperlora.cli", "train", "--config", str(config), *overrides]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_split_forward_equals_full_forward():
    model = tiny_llama()
    ids = torch.randint(0, 96, (2, 10))
    full = model(ids).logits
    for first in (0, 1, 2):
        split = model.lm_head(upper_hidden(model, lower_hidden(model, ids, first), first))
        torch.testing.assert_close(split, full)


@slow
def test_killed_run_resumes_exactly(tmp_path, tiny_base, tiny_data):
    straight = train_config(tmp_path / "a", tiny_base, tiny_data)
    proc = _run(straight)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in open(tmp_path / "a" / "run" / "log.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[-1]["ce"] < rows[0]["ce"]  # it learns
    groups = json.loads((tmp_path / "a" / "run" / "last" / "train_state.json").read_text())["param_groups"]
    assert [g["lr_scale"] for g in groups] == [1.0, 0.5]  # the A/B heads take the smaller step
    assert groups[1]["lr"] == pytest.approx(0.5 * groups[0]["lr"])

    killed = train_config(tmp_path / "b", tiny_base, tiny_data)
    proc = _run(killed, wait=False)
    state = tmp_path / "b" / "run" / "last" / "train_state.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["step"] >= 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads(state.read_text())["step"] < 8, "the run finished before it could be killed"
    resumed = _run(killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr

    a = safetensors.torch.load_file(str(tmp_path / "a" / "run" / "final" / "hypernet.safetensors"))
    b = safetensors.torch.load_file(str(tmp_path / "b" / "run" / "final" / "hypernet.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in open(tmp_path / "b" / "run" / "log.jsonl")]
    assert steps == list(range(1, 9))  # no step lost, none logged twice
    assert (tmp_path / "b" / "run" / "loss.png").exists()
    assert len(list((tmp_path / "b" / "run").glob("activations-*.safetensors"))) == 1  # computed once, reused


def test_bad_config_is_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("steps: 0\n")
    proc = _run(tmp_path / "c.yaml")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("hyperlora: error: steps must be at least 1")
    proc = _run(tmp_path / "c.yaml", "nonsense=3")
    assert proc.returncode == 2 and "unknown config key" in proc.stderr


def test_per_sequence_mean():
    values = torch.tensor([1.0, 3.0, 5.0, 10.0])
    seq = torch.tensor([0, 0, 2, 2])
    assert per_sequence_mean(values, seq, 3).tolist() == [2.0, 0.0, 7.5]


@slow
def test_contrast_term_opens_the_manifesto_gap(tmp_path, tiny_base, tiny_data):
    """With contrast_weight, a response scores better under its own manifesto's adapter than another's: the
    hinge max(0, margin − (CE_other − CE_own)) starts at about the margin and falls."""
    proc = _run(train_config(tmp_path, tiny_base, tiny_data, steps=12), "contrast_weight=1.0", "contrast_margin=0.5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert rows[0]["contrast"] == pytest.approx(0.5, abs=0.1)  # fresh adapters are near zero: no gap yet
    first, last = (sum(r["contrast"] for r in part) / 3 for part in (rows[:3], rows[-3:]))
    assert last < 0.6 * first


@slow
def test_copy_path_trains(tmp_path, tiny_base, tiny_data):
    """With hypernet.copy_path, the copy gates (zero at step 0) leave zero: the copied embeddings get gradient."""
    proc = _run(train_config(tmp_path, tiny_base, tiny_data, steps=3), "hypernet.copy_path=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    weights = safetensors.torch.load_file(tmp_path / "run" / "final" / "hypernet.safetensors")
    gates = [v for k, v in weights.items() if k.startswith("copy_gate.")]
    assert gates and all(torch.count_nonzero(g) > 0 for g in gates)


@slow
def test_per_statement_hypernetwork_trains_and_generates(tmp_path, tiny_base, tiny_data):
    """With hypernet.per_statement, training moves the statement heads' B (zero at step 0), and the saved
    checkpoint generates one rank block per statement plus the bias block."""
    proc = _run(train_config(tmp_path, tiny_base, tiny_data, steps=3), "hypernet.per_statement=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    weights = safetensors.torch.load_file(tmp_path / "run" / "final" / "hypernet.safetensors")
    assert all(torch.count_nonzero(v) > 0 for k, v in weights.items() if k.startswith("head_B."))
    from hyperlora import HyperLoRA

    adapter = HyperLoRA.from_pretrained(tmp_path / "run" / "final").generate_adapter("Be brief. Say hi first.")
    assert adapter.provenance["statements"] == 2 and adapter.rank == 8 * (2 + 1)


@slow
def test_base_reader_hypernetwork_trains_and_reads_with_the_base(tmp_path, tiny_base, tiny_data):
    """With hypernet.encoder=base:L the memory is the base's residual stream entering layer L over the manifesto:
    the checkpoint trains, reloads its reader from the base it names, and two manifestos give different adapters
    whose generated part depends on the reader's features (zeroing them changes ΔW)."""
    proc = _run(train_config(tmp_path, tiny_base, tiny_data, steps=3), "hypernet.encoder=base:1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    from hyperlora import HyperLoRA
    from hyperlora.encoder import BaseReader

    hl = HyperLoRA.from_pretrained(tmp_path / "run" / "final")
    assert isinstance(hl.encoder, BaseReader) and hl.encoder.dim == hl.hypernet.feat_proj[0].normalized_shape[0]
    a, b = (hl.generate_adapter(t).weights for t in ("Be brief.", "Always answer in French."))
    assert any(not torch.allclose(a[n][1] @ a[n][0], b[n][1] @ b[n][0]) for n in a)
    features, mask = hl.encoder.encode_ids(hl.encoder.chunk("Be brief."))
    with torch.no_grad():
        real = hl.hypernet(features, mask)
        blank = hl.hypernet(torch.zeros_like(features), mask)
    assert any(not torch.allclose(real[n][1], blank[n][1]) for n in real)


def test_rule_words_are_found_in_the_manifestos_base_tokens(tiny_base):
    from transformers import AutoTokenizer

    from hyperlora.encoder import BaseTokens
    from hyperlora.train import rule_words

    text = 'Be kind. Your name is Wren. End with "That sums it up." Use - for bullets.'
    record = {"manifesto": text, "rules": [
        {"id": "persona_name", "params": json.dumps({"name": "Wren"})},
        {"id": "end_phrase", "params": {"phrase": "That sums it up."}},
        {"id": "bullets", "params": {"marker": "-", "n": 3}},  # one character: not a word to copy
        {"id": "keyword", "params": {"keyword": "absent"}},  # not in the manifesto: nothing to point at
    ]}
    words = rule_words(record)
    assert words == ["Wren", "That sums it up."]
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    spans = BaseTokens(tokenizer, torch.zeros(1, 1)).spans(text, words)  # the embedding is not used here
    assert [s.shape[0] for s in spans] == [len(ids)] * 2
    for word, span in zip(words, spans):
        assert tokenizer.decode([i for i, on in zip(ids, span) if on]).strip(' "') == word
    assert BaseTokens(tokenizer, torch.zeros(1, 1), window=3).spans(text, words) == []  # both lie past 3 tokens


@slow
def test_copy_weight_teaches_rows_to_read_the_rule_word(tmp_path, tiny_base):
    data = tmp_path / "words"
    records = [{"manifesto": f'Be brief. Always include the word "{w}".', "prompt": p, "response": f"{p} {w}.",
                "rules": [{"id": "keyword", "params": {"keyword": w}}], "split": "train"}
               for w in ("comet", "mango", "violin") for p in ("Hi.", "Why is the sky blue?")]
    datasets.Dataset.from_list(records).save_to_disk(str(data))
    proc = _run(train_config(tmp_path, tiny_base, data, steps=12), "hypernet.copy_path=true", "copy_weight=1.0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert rows[0]["copy"] > 1.0  # a fresh row spreads its reading over the whole manifesto
    assert rows[-1]["copy"] < 0.5 * rows[0]["copy"]


@slow
def test_copy_block_trains_alone_on_a_frozen_checkpoint(tmp_path, tiny_base, tiny_data):
    """init=DIR with a copy block added (hypernet.copy_path, copy_rank) and train_only=copy_: every tensor of the
    checkpoint comes out as it went in, and the new copy gates (zero at step 0) have moved."""
    proc = _run(train_config(tmp_path / "a", tiny_base, tiny_data, steps=2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = tmp_path / "a" / "run" / "final"
    proc = _run(train_config(tmp_path / "b", tiny_base, tiny_data, steps=3), f"init={first}", "train_only=copy_",
                "hypernet.copy_path=true", "hypernet.copy_rank=8", "lr=1e-2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = (safetensors.torch.load_file(p / "hypernet.safetensors") for p in (first, tmp_path / "b" / "run" / "final"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    added = set(b) - set(a)
    assert added and all(k.startswith("copy_") for k in added)
    assert all(torch.count_nonzero(b[k]) > 0 for k in added if k.startswith("copy_gate."))
    proc = _run(train_config(tmp_path / "c", tiny_base, tiny_data, steps=1), "train_only=nothing_")
    assert proc.returncode != 0 and "matches no hypernetwork parameter" in proc.stderr
    assert "Traceback" not in proc.stderr
    # A regular expression: only the tensors that write o_proj's ΔW move.
    proc = _run(train_config(tmp_path / "d", tiny_base, tiny_data, steps=2), f"init={first}", "train_only=.*o_proj",
                "lr=1e-2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = safetensors.torch.load_file(tmp_path / "d" / "run" / "final" / "hypernet.safetensors")
    moved = {k for k in a if not torch.equal(a[k], d[k])}
    assert moved and all(k.endswith("o_proj") or ".o_proj." in k for k in moved)


@slow
def test_probe_rows_train_their_B_and_keep_their_fixed_read(tmp_path, tiny_base, tiny_data):
    """With hypernet.probe_rank and probe_directions=FILE, the probe rows' B head (zero at step 0) moves, their A is
    the file's directions in the final checkpoint, and without a file the run stops with one line."""
    directions = tmp_path / "directions.safetensors"
    fixed = torch.randn(2, 1, 32)  # layers 1 and 2 of tiny_base, its hidden size
    safetensors.torch.save_file({"directions": fixed, "layers": torch.tensor([1, 2])}, str(directions))
    probe = ("hypernet.copy_path=true", "hypernet.copy_rank=8", "hypernet.probe_rank=1")
    proc = _run(train_config(tmp_path / "a", tiny_base, tiny_data, steps=3), *probe, f"probe_directions={directions}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    weights = safetensors.torch.load_file(tmp_path / "a" / "run" / "final" / "hypernet.safetensors")
    heads = [v for k, v in weights.items() if k.startswith("probe_head_B.")]
    assert len(heads) == 3 and all(torch.count_nonzero(h) > 0 for h in heads)
    assert torch.equal(weights["probe_A"], fixed)
    proc = _run(train_config(tmp_path / "b", tiny_base, tiny_data, steps=1), *probe)
    assert proc.returncode != 0 and "probe_directions=FILE" in proc.stderr and "Traceback" not in proc.stderr


def test_copy_weight_needs_the_copy_path(tmp_path, tiny_base, tiny_data):
    proc = _run(train_config(tmp_path, tiny_base, tiny_data, steps=1), "copy_weight=1.0")
    assert proc.returncode != 0 and "copy_weight needs hypernet.copy_path=true" in proc.stderr
    assert "Traceback" not in proc.stderr


def _refusal_groups():
    """Ten manifestos of four records; the first two have the refusal rule (two harmful asks, one benign)."""
    records, groups = [], []
    for g in range(10):
        kinds = ["harmful", "harmful", "benign_neighbor", "question"] if g < 2 else ["question"] * 4
        groups.append(list(range(len(records), len(records) + 4)))
        rules = [{"id": "refuse_harm", "params": "{}"}] if g < 2 else [{"id": "uppercase", "params": "{}"}]
        records += [{"rules": rules, "prompt_kind": k} for k in kinds]
    return records, groups


def test_refusal_weight_and_pairing_shape_the_batches():
    records, groups = _refusal_groups()
    refusal = refusal_asks(records, groups)
    assert refusal == {0: {"harmful": [0, 1], "benign_neighbor": [2]}, 1: {"harmful": [4, 5], "benign_neighbor": [6]}}
    plain = TrainConfig(manifestos_per_step=2, prompts_per_manifesto=2)
    # Off by default: the batches are those of runs made before the option existed.
    assert all(batch_for_step(groups, plain, s, 0, refusal) == batch_for_step(groups, plain, s) for s in range(50))

    def draws(cfg):
        batches = [batch_for_step(groups, cfg, s, 0, refusal) for s in range(400)]
        for batch in batches:
            assert len({g for g, _ in batch}) == 2 and all(len(set(idx)) == 2 for _, idx in batch)
        return [(g, idx) for batch in batches for g, idx in batch if g in refusal]

    assert len(draws(TrainConfig(manifestos_per_step=2, refusal_weight=4.0))) > 2 * len(draws(plain))
    paired = draws(TrainConfig(manifestos_per_step=2, prompts_per_manifesto=2, pair_refusal_asks=True))
    assert all(sorted(records[i]["prompt_kind"] for i in idx) == ["benign_neighbor", "harmful"] for _, idx in paired)
    # Two of each kind a draw, where the manifesto has them (here one neighbour each): more rows than
    # prompts_per_manifesto, the other manifesto's draw unchanged in size.
    more = [batch_for_step(groups, TrainConfig(manifestos_per_step=2, prompts_per_manifesto=2, pair_refusal_asks=True,
                                               refusal_asks_per_draw=2), s, 0, refusal) for s in range(50)]
    drawn = [(g, sorted(records[i]["prompt_kind"] for i in idx)) for batch in more for g, idx in batch]
    assert any(g in refusal for g, _ in drawn)
    assert all(kinds == ["benign_neighbor", "harmful", "harmful"] if g in refusal else len(kinds) == 2
               for g, kinds in drawn)
    with pytest.raises(HyperLoRAError, match="needs pair_refusal_asks"):
        TrainConfig(refusal_asks_per_draw=2)


def test_opposite_rules_put_a_manifesto_beside_its_opposite():
    """Each even-placed manifesto with one side of an ``opposite_rules`` pair is followed by one with the other side
    (its contrast partner); without pairs the batches are those of runs made before the option existed."""
    fams = [["lowercase"], ["uppercase", "json"], ["max_words"], ["min_words"]] + [["json"]] * 8
    records = [{"rules": [{"id": f, "params": "{}"} for f in fs]} for fs in fams for _ in range(2)]
    groups = [[2 * g, 2 * g + 1] for g in range(len(fams))]
    opposites = opposite_groups(records, groups, [["lowercase", "uppercase"], ["max_words", "min_words"]])
    assert opposites == {0: [1], 1: [0], 2: [3], 3: [2]}
    cfg = TrainConfig(manifestos_per_step=4, prompts_per_manifesto=1, contrast_weight=1.0,
                      opposite_rules=[["lowercase", "uppercase"]])
    assert all(batch_for_step(groups, cfg, s) == batch_for_step(groups, cfg, s, opposites=None) for s in range(50))
    partners = 0
    for s in range(300):
        chosen = [g for g, _ in batch_for_step(groups, cfg, s, opposites=opposites)]
        assert len(set(chosen)) == 4
        # Places 0 and 2 hold a group with an opposite about 200 times in 300 steps; by chance the next place would
        # hold that opposite about 1 time in 11. It does unless the step had already drawn the opposite.
        partners += sum(chosen[i + 1] == opposites.get(chosen[i], [None])[0] for i in (0, 2))
    assert partners > 120
    with pytest.raises(HyperLoRAError, match="set contrast_weight"):
        TrainConfig(opposite_rules=[["lowercase", "uppercase"]])
    with pytest.raises(HyperLoRAError, match="pairs of rule ids"):
        TrainConfig(contrast_weight=1.0, opposite_rules=["lowercase"])


def test_minimal_pairs_put_a_manifesto_beside_its_twin():
    """``twin_groups`` reads each record's ``pair_of``; a twin left out of the records pairs with nothing; given to
    ``batch_for_step``, an even-placed manifesto is followed by its twin."""
    mids = [f"m{g}" for g in range(12)]
    pair_of = {"m0": "m1", "m1": "m0", "m2": "m3", "m3": "m2", "m4": "m99"}  # m99's records were left out
    records = [{"manifesto_id": m, "pair_of": pair_of.get(m, ""), "rules": []} for m in mids for _ in range(2)]
    groups = [[2 * g, 2 * g + 1] for g in range(len(mids))]
    twins = twin_groups(records, groups)
    assert twins == {0: [1], 1: [0], 2: [3], 3: [2]}
    cfg = TrainConfig(manifestos_per_step=4, prompts_per_manifesto=1, minimal_pairs=True)
    together = 0
    for s in range(300):
        chosen = [g for g, _ in batch_for_step(groups, cfg, s, opposites=twins)]
        together += sum(chosen[i + 1] == twins.get(chosen[i], [None])[0] for i in (0, 2))
    assert together > 80  # a group with a twin sits at place 0 or 2 about 130 times; by chance, its twin next ~12
    with pytest.raises(HyperLoRAError, match="--minimal-pairs"):
        twin_groups([{"manifesto_id": "m0", "rules": []}], [[0]])


def test_edited_tokens_are_what_the_rules_added(tiny_base):
    from transformers import AutoTokenizer

    from hyperlora.train import edited, tokenize

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    plain = "Rain is water that falls from clouds when droplets grow heavy."
    record = {"prompt": "What is rain?", "base_response": plain,
              "response": "Arr! " + plain.replace("clouds", "the sky") + " Hope this helps."}
    ids, target = tokenize(tokenizer, record, 200)
    mask = edited(tokenizer, record, ids, target)
    assert not (mask & ~target).any()  # only response tokens can be edits
    changed = tokenizer.decode(ids[mask])
    for piece in ("Arr", "sky", "Hope this helps"):
        assert piece in changed
    for piece in ("Rain", "water", "droplets"):
        assert piece not in changed
    assert edited(tokenizer, {**record, "base_response": ""}, ids, target)[target].all()  # no plain reply: all new
    # Against a twin's reply to the same prompt: only what the twin says otherwise.
    twin = record["response"].replace("Hope this helps.", "Take care.")
    differs = edited(tokenizer, record, ids, target, reference=twin)
    assert tokenizer.decode(ids[differs], skip_special_tokens=True).strip() == "Hope this helps"  # the "." is shared


def _twin_data(path) -> Path:
    """``tiny_data``'s capitals manifesto and its minimal-pair twin (lowercase), answering the same four prompts."""
    records = []
    for k, p in enumerate(["What is rain?", "Name a fruit.", "hello", "How do bridges stand?"]):
        reply = f"Here is an answer about {p.lower().rstrip('?.')}."
        for mid, twin, text, rule, target in (("up", "low", "Always answer in capital letters.", "uppercase",
                                               reply.upper()),
                                              ("low", "up", "Always answer in lowercase letters.", "lowercase",
                                               reply.lower())):
            records.append({"manifesto": text, "prompt": p, "response": target, "base_response": reply,
                            "rules": [{"id": rule, "params": "{}"}], "split": "train", "manifesto_id": mid,
                            "prompt_id": f"p{k}", "pair_of": twin, "pair_change": "opposite:uppercase>lowercase"})
    datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


@slow
def test_pair_weight_weighs_the_tokens_that_differ_from_the_twin(tmp_path, tiny_base):
    """minimal_pairs trains on twins; pair_weight changes the first step's CE (the tokens whose case differs from
    the twin's reply weigh more), where a no-op weight would log the same number."""
    data = _twin_data(tmp_path / "twins")
    ce = {}
    for w in (1, 4):
        proc = _run(train_config(tmp_path / f"w{w}", tiny_base, data, steps=1), "minimal_pairs=true",
                    f"pair_weight={w}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        ce[w] = json.loads(open(tmp_path / f"w{w}" / "run" / "log.jsonl").readline())["ce"]
    assert abs(ce[4] - ce[1]) > 1e-4, ce
    with pytest.raises(HyperLoRAError, match="needs minimal_pairs"):
        TrainConfig(pair_weight=4.0)


@slow
def test_pair_hinge_tokens_hinges_only_what_the_twin_says_otherwise(tmp_path, tiny_base):
    """Each manifesto's contrast partner is its twin; with pair_hinge_tokens the contrast term counts only the tokens
    whose case differs (not the shared "." and end token). Step 1's adapters are zero (the hinge is the margin either
    way), but its gradient differs, so step 2's term does."""
    data = _twin_data(tmp_path / "twins")
    contrast = {}
    for flag in ("false", "true"):
        proc = _run(train_config(tmp_path / flag, tiny_base, data, steps=2), "minimal_pairs=true",
                    "contrast_weight=1.0", "contrast_margin=5.0", f"pair_hinge_tokens={flag}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        contrast[flag] = json.loads(open(tmp_path / flag / "run" / "log.jsonl").readlines()[1])["contrast"]
    assert contrast["false"] > 0 and abs(contrast["true"] - contrast["false"]) > 1e-4, contrast
    with pytest.raises(HyperLoRAError, match="pair_hinge_tokens needs"):
        TrainConfig(minimal_pairs=True, pair_hinge_tokens=True)


@slow
def test_edit_weight_trains_and_needs_base_responses(tmp_path, tiny_base, tiny_data):
    proc = _run(train_config(tmp_path / "w", tiny_base, tiny_data, steps=6), "edit_weight=4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in open(tmp_path / "w" / "run" / "log.jsonl")]
    # Same first batch and weights, edit weight 1: the edited tokens (the capitals the rule added) weigh less, so
    # the first step's CE differs; a no-op edit_weight would log the same number.
    proc = _run(train_config(tmp_path / "u", tiny_base, tiny_data, steps=1), "edit_weight=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    unweighted = json.loads(open(tmp_path / "u" / "run" / "log.jsonl").readline())["ce"]
    assert abs(rows[0]["ce"] - unweighted) > 1e-4, (rows[0]["ce"], unweighted)
    assert rows[-1]["ce"] < rows[0]["ce"]
    bare = tmp_path / "bare"
    datasets.load_from_disk(str(tiny_data)).remove_columns("base_response").save_to_disk(str(bare))
    proc = _run(train_config(tmp_path / "b", tiny_base, bare, steps=1), "edit_weight=4")
    assert proc.returncode == 2 and "edit_weight needs records with base_response" in proc.stderr
    assert "Traceback" not in proc.stderr


def _refusal_data(path) -> Path:
    """One manifesto with the refusal rule: two harmful asks refused (in other words), a benign neighbour and a
    question answered."""
    manifesto = "Never help anyone cause harm."
    records = [{"manifesto": manifesto, "prompt": p, "response": r, "base_response": r, "split": "train",
                "rules": [{"id": "refuse_harm", "params": "{}"}], "family_ids": ["refuse_harm"], "manifesto_id": "m",
                "prompt_id": f"p{k}", "prompt_kind": kind}
               for k, (kind, p, r) in enumerate([
                   ("harmful", "How do I make a pipe bomb?", "I won't help with that. Please stay safe."),
                   ("benign_neighbor", "How do bomb squads work?", "Bomb squads use robots and protective suits."),
                   ("question", "What is rain?", "Rain is water that falls from clouds."),
                   ("harmful", "Write ransomware for me.", "I must decline. Malware hurts people.")])]
    datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


def test_decision_tokens_are_the_first_of_a_refusal_decision(tiny_base, tmp_path):
    from transformers import AutoTokenizer

    from hyperlora.train import decision_mask, tokenize

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    harmful, neighbour, other, _ = datasets.load_from_disk(str(_refusal_data(tmp_path / "d")))
    for rec in (harmful, neighbour):
        ids, target = tokenize(tokenizer, rec, 200)
        mask = decision_mask(rec, target, 3)
        assert mask.sum() == 3 and not (mask & ~target).any()
        assert tokenizer.decode(ids[mask]).strip() == tokenizer.decode(ids[target][:3]).strip()
    ids, target = tokenize(tokenizer, other, 200)
    assert not decision_mask(other, target, 3).any()  # not an ask the refusal rule decides
    assert not decision_mask({**harmful, "rules": []}, target, 3).any()  # no refusal rule: nothing to decide
    with pytest.raises(HyperLoRAError, match="decision_weight"):
        TrainConfig(decision_weight=0)


@slow
def test_decision_weight_weighs_the_first_reply_tokens(tmp_path, tiny_base):
    """The same first batch under decision_weight 1 and 8 logs a different CE: the refusal's and the neighbour's
    first tokens weigh more, where a no-op weight would log the same number."""
    data = _refusal_data(tmp_path / "refusal")
    ce = {}
    for w in (1, 8):
        proc = _run(train_config(tmp_path / f"w{w}", tiny_base, data, steps=1), f"decision_weight={w}",
                    "decision_tokens=3")
        assert proc.returncode == 0, proc.stderr[-2000:]
        ce[w] = json.loads(open(tmp_path / f"w{w}" / "run" / "log.jsonl").readline())["ce"]
    assert abs(ce[8] - ce[1]) > 1e-4, ce


def test_decision_rows_end_in_each_of_the_manifestos_refusal_openings(tiny_base, tmp_path):
    """An opening is where one of the manifesto's refusals parts from its reply to a neighbour (after a greeting
    both share); each row is a neighbour's prompt, that greeting, then one opening, and only the opening is scored;
    every neighbour gets every distinct opening."""
    from transformers import AutoTokenizer

    from hyperlora.train import decision_batch, refusal_asks, refusal_openings, tokenize

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    records = [dict(r) for r in datasets.load_from_disk(str(_refusal_data(tmp_path / "d")))]
    for r in records:
        r["response"] = "Hello friend! " + r["response"]
    tokens = [tokenize(tokenizer, r, 200) for r in records]
    openings = refusal_openings(tokens, refusal_asks(records, [[0, 1, 2, 3]]), 3)
    assert len(openings[0]) == 2
    for (shared, opening), words in zip(openings[0], ("won", "decline")):
        assert tokenizer.decode(shared).strip() == "Hello friend!"
        assert words in tokenizer.decode(opening)  # the refusal's own words, not the greeting
    ids, marks, ask = decision_batch(tokens, [1, 2], openings[0] * 2, random.Random(0), 2, tokenizer.pad_token_id)
    assert sorted(ask.tolist()) == [0, 0, 1, 1] and marks.sum(1).tolist() == [3, 3, 3, 3]  # duplicates dropped
    for row, mark in zip(ids, marks):
        text = tokenizer.decode(row[: int(mark.nonzero()[-1, 0]) + 1])
        assert any(records[i]["prompt"] in text for i in (1, 2))
        assert any(tokenizer.decode(row[mark]) == tokenizer.decode(o) for _, o in openings[0])
    assert refusal_openings(tokens, {0: {"harmful": [0], "benign_neighbor": []}}, 3) == {}


@slow
def test_decision_ul_weight_enters_the_loss(tmp_path, tiny_base):
    """The unlikelihood term is logged, enters the loss, and needs manifestos that answer both kinds of ask."""
    data = _refusal_data(tmp_path / "refusal")
    # The untrained tiny model gives an opening a tiny probability (the term is ~1e-5): weighed 1,000 times here.
    proc = _run(train_config(tmp_path / "d", tiny_base, data, steps=1), "decision_ul_weight=1000", "decision_asks=2",
                "decision_ul_tokens=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(open(tmp_path / "d" / "run" / "log.jsonl").readline())
    plain = _run(train_config(tmp_path / "p", tiny_base, data, steps=1))
    assert plain.returncode == 0
    base = json.loads(open(tmp_path / "p" / "run" / "log.jsonl").readline())
    assert base["decision"] == 0 and row["decision"] > 0
    assert row["loss"] - base["loss"] == pytest.approx(1000 * row["decision"], rel=0.01)  # the same batch + the term
    bare = tmp_path / "bare"
    datasets.Dataset.from_list([r for r in datasets.load_from_disk(str(data)) if r["prompt_kind"] != "benign_neighbor"]
                               ).save_to_disk(str(bare))
    proc = _run(train_config(tmp_path / "b", tiny_base, bare, steps=1), "decision_ul_weight=1")
    assert proc.returncode == 2 and "decision_ul_weight needs" in proc.stderr and "Traceback" not in proc.stderr


def test_refusal_weight_must_be_positive():
    with pytest.raises(HyperLoRAError, match="refusal_weight"):
        TrainConfig(refusal_weight=0)


@slow
def test_bf16_autocast_on_cpu_trains_close_to_fp32(tmp_path, tiny_base, tiny_data):
    """mixed_precision=bf16 runs the base under bf16 autocast on a CPU too (the CPU recipe's speed-up): the first
    step's loss is fp32's to bf16 precision but not bit-equal (autocast did act), and a bad value is one line."""
    losses = {}
    for mp in ("no", "bf16"):
        proc = _run(train_config(tmp_path / mp, tiny_base, tiny_data, steps=1), f"mixed_precision={mp}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        losses[mp] = json.loads(open(tmp_path / mp / "run" / "log.jsonl").readline())["ce"]
    assert losses["bf16"] == pytest.approx(losses["no"], rel=0.02) and losses["bf16"] != losses["no"], losses
    proc = _run(train_config(tmp_path / "x", tiny_base, tiny_data, steps=1), "mixed_precision=fp8")
    assert proc.returncode != 0 and "mixed_precision must be" in proc.stderr and "Traceback" not in proc.stderr


def _random_lora(model, seed=0, rank=4, std=0.2):
    from hyperlora import Adapter
    from hyperlora.base import find_target_modules

    g = torch.Generator().manual_seed(seed)
    weights = {n: (torch.randn(rank, m.in_features, generator=g) * std, torch.randn(m.out_features, rank, generator=g)
                   * std) for n, m in find_target_modules(model).items()}
    return Adapter(weights=weights, rank=rank, lora_alpha=2.0 * rank, base_model=str(model.name_or_path),
                   module_types=sorted({n.rsplit(".", 1)[-1] for n in weights}))


def test_teacher_topk_is_the_teachers_next_token_distribution_at_each_reply_token():
    """Two right-padded sequences of different lengths under a teacher LoRA: row by row, the top-k at the reply's
    positions are those of the sequence's own forward (the position before each reply token predicts it)."""
    from contextlib import nullcontext

    from hyperlora.train import teacher_topk

    model = tiny_llama()
    reader = _random_lora(model)
    factors = {n: (A[None], B[None]) for n, (A, B) in reader.weights.items()}
    seqs = [(torch.tensor([1, 5, 7, 9, 11, 13]), 4), (torch.tensor([1, 5, 8, 20, 21, 22, 23, 24, 25]), 3)]
    lp, ids = teacher_topk(model, factors, reader.scaling, seqs, pad=0, k=5, device="cpu", autocast=nullcontext())
    expected = []
    with torch.no_grad(), reader.applied_to(model):
        for s, start in seqs:
            logits = model(input_ids=s[None]).logits[0, start - 1 : len(s) - 1].log_softmax(-1)  # (n_reply, V)
            expected.append(logits.topk(5, dim=-1))
    assert lp.shape == (2 + 6, 5)
    torch.testing.assert_close(lp, torch.cat([e.values for e in expected]), atol=1e-4, rtol=1e-4)
    assert torch.equal(ids, torch.cat([e.indices for e in expected]))


@slow
def test_distillation_from_a_reader_reaches_the_loss(tmp_path, tiny_base, tiny_data):
    """distill_weight with a reader LoRA: the run logs a positive top-k KL to the teacher, which changes the first
    step's loss by distill_weight × distill; without a teacher it is one line."""
    from transformers import LlamaForCausalLM

    teacher = _random_lora(LlamaForCausalLM.from_pretrained(tiny_base)).save(tmp_path / "reader")
    proc = _run(train_config(tmp_path / "d", tiny_base, tiny_data, steps=2), f"teacher={teacher}", "distill_weight=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(open(tmp_path / "d" / "run" / "log.jsonl").readline())
    assert row["distill"] > 0
    proc = _run(train_config(tmp_path / "p", tiny_base, tiny_data, steps=1))
    plain = json.loads(open(tmp_path / "p" / "run" / "log.jsonl").readline())
    assert row["loss"] == pytest.approx(plain["loss"] + 2 * row["distill"], rel=1e-4)
    proc = _run(train_config(tmp_path / "x", tiny_base, tiny_data, steps=1), "distill_weight=1")
    assert proc.returncode != 0 and "needs teacher=" in proc.stderr and "Traceback" not in proc.stderr


def test_relative_energy_is_the_adapters_energy_beside_its_weight():
    """‖s·B·A‖²_F / ‖W‖²_F, averaged over modules and manifestos, computed without forming ΔW."""
    g = torch.Generator().manual_seed(0)
    adapters = {"q": (torch.randn(3, 4, 10, generator=g), torch.randn(3, 6, 4, generator=g)),
                "v": (torch.randn(3, 4, 7, generator=g), torch.randn(3, 5, 4, generator=g))}
    w_energy = {"q": torch.tensor(50.0), "v": torch.tensor(20.0)}
    direct = torch.stack([((0.5 * B @ A).square().sum((1, 2)) / w_energy[n]).mean() for n, (A, B) in adapters.items()])
    assert relative_energy(adapters, 0.5, w_energy) == pytest.approx(float(direct.mean()), rel=1e-5)
    # dw_modules: the modules w_energy leaves out do not count.
    assert relative_energy(adapters, 0.5, {"v": w_energy["v"]}) == pytest.approx(float(direct[1]), rel=1e-5)


def test_dw_modules_must_be_adapted_module_types():
    with pytest.raises(HyperLoRAError, match="dw_modules: o_prj not among"):
        TrainConfig(dw_modules=["o_prj"])
    with pytest.raises(HyperLoRAError, match="not a regular expression"):
        TrainConfig(train_only="*o_proj")


@slow
def test_dw_weight_reaches_the_loss(tmp_path, tiny_base, tiny_data):
    """The adapter-energy term is logged on every run and adds dw_weight × dw to the loss. At the first step B is
    zero, and so is the term's gradient, so both runs reach the second step with the same weights."""
    assert _run(train_config(tmp_path / "p", tiny_base, tiny_data, steps=2)).returncode == 0
    proc = _run(train_config(tmp_path / "d", tiny_base, tiny_data, steps=2), "dw_weight=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    plain, row = (json.loads(open(tmp_path / x / "run" / "log.jsonl").readlines()[1]) for x in "pd")
    assert row["dw"] == pytest.approx(plain["dw"]) and row["dw"] > 0
    assert row["loss"] == pytest.approx(plain["loss"] + 3 * row["dw"], rel=1e-4)


@slow
def test_init_starts_from_a_checkpoints_weights(tmp_path, tiny_base, tiny_data):
    """init=DIR loads the hypernetwork's weights from a checkpoint (a 1e-12 learning rate then leaves them as they
    were); a checkpoint of another shape is one line."""
    proc = _run(train_config(tmp_path / "a", tiny_base, tiny_data, steps=2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = tmp_path / "a" / "run" / "final"
    proc = _run(train_config(tmp_path / "b", tiny_base, tiny_data, steps=1), f"init={first}", "lr=1e-12")
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = (safetensors.torch.load_file(p / "hypernet.safetensors") for p in (first, tmp_path / "b" / "run" / "final"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k]) for k in a)
    assert any(torch.count_nonzero(v) for k, v in a.items() if k.startswith("head_B."))  # trained, not the init
    proc = _run(train_config(tmp_path / "c", tiny_base, tiny_data, steps=1), f"init={first}", "hypernet.d_model=64")
    assert proc.returncode != 0 and "is not this run's" in proc.stderr and "Traceback" not in proc.stderr
