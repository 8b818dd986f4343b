"""`hyperlora eval --quick` end to end on the real embedded model: every condition and metric, with CIs, on disk.

    .venv/bin/pytest tests/test_evals_quick.py -q      # a few minutes on 2 CPU cores
"""

import json

import pytest
from hyperlora.evals.run import CONDITIONS, format_summary, run_eval

from hyperlora import HyperLoRAError

pytestmark = pytest.mark.slow

STAT = {"value", "ci_low", "ci_high", "n"}


def has_ci(stat):
    return STAT <= set(stat) and stat["n"] > 0 and stat["ci_low"] <= stat["value"] <= stat["ci_high"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "quick"
    res = run_eval(out, quick=True, progress=False)
    return out, res


def test_outputs_are_written(quick):
    out, res = quick
    assert json.loads((out / "results.json").read_text())["conditions"] == list(CONDITIONS)
    report = (out / "report.md").read_text()
    for heading in ("## Headline", "## Pass rate by split", "## Pass rate by rule family", "## Controls",
                    "## Capability", "## Refusal", "## Hello probe", "**Method.**", "## Costs"):
        assert heading in report
    for cond in CONDITIONS:
        assert f"`{cond}`" in report
    assert "Ceiling at this decode budget" in report
    assert (out / "pass_rate_by_condition.png").stat().st_size > 1000
    assert (out / "pass_rate_vs_context.png").stat().st_size > 1000
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_every_condition_has_every_metric_with_cis(quick):
    _, res = quick
    for cond in CONDITIONS:
        assert has_ci(res["pass_rate"][cond]["all"]), cond
        assert set(res["pass_rate"][cond]["by_split"]) == set(res["meta"]["splits"])
        assert res["pass_rate"][cond]["by_family"]
        assert has_ci(res["kl_to_system"][cond]), cond
        assert has_ci(res["capability"][cond]["qa_accuracy"]), cond
        assert {"value", "ci_low", "ci_high", "n"} <= set(res["capability"][cond]["perplexity"])
        assert has_ci(res["refusal_harmful"][cond]) and has_ci(res["refusal_benign"][cond]), cond
        assert has_ci(res["degenerate"][cond]) and res["degenerate"][cond]["n"] == res["meta"]["n_qa"], cond
        assert res["context_tokens"][cond] > 0
    diff = res["adapter_minus_system_prompt"]["all"]
    assert has_ci(diff) and diff["n"] == res["meta"]["n_cases"] and -1 <= diff["value"] <= 1
    # The generated adapter changes the model, and differently from another manifesto's (a no-op adapter, or one
    # that ignores its manifesto, would tie these exactly).
    kl = {c: res["kl_to_system"][c]["value"] for c in ("base", "adapter", "shuffled", "adapter_guard")}
    assert kl["adapter"] != kl["base"] and kl["adapter"] != kl["shuffled"], kl
    # adapter_guard is the adapter's own decodes passed through the guard: the same model, and every harmful ask of
    # the eval refused (the prompt guard blocks all of them: scripts/guard_eval.py).
    assert kl["adapter_guard"] == kl["adapter"]
    harmful = res["refusal_harmful"]["adapter_guard"]
    assert harmful["n"] > 0 and harmful["value"] == 1.0
    ceiling = res["target_ceiling"]
    assert has_ci(ceiling["all"]) and ceiling["all"]["n"] == res["meta"]["n_cases"]
    assert set(ceiling["by_split"]) == set(res["meta"]["splits"])
    for cond, s in res["pass_rate_sampled"].items():
        assert has_ci(s) and s["seeds"] >= 3 and s["n_obs"] == s["n"] * s["seeds"], cond


def test_hello_probe_costs_and_latency(quick):
    _, res = quick
    hp = res["hello_probe"]
    assert "suffix array" in hp["method"] and hp["corpus"]["tokens"] > 0
    for who in ("base", "adapter"):
        for mode in ("greedy", "sampled"):
            v = hp[who][mode]
            assert has_ci(v["longest_mean"]) and has_ci(v["span_ge_20"]) and has_ci(v["span_ge_50"])
    for mode in ("greedy", "sampled"):
        # The probe with the guard on: the adapter's own samples, each either sent as decoded or replaced.
        g = hp["adapter_guard"][mode]
        assert g["n_samples"] == hp["adapter"][mode]["n_samples"] and has_ci(g["passed_unchanged"])
        assert has_ci(g["longest_mean"]) and has_ci(g["span_ge_20"]) and has_ci(g["span_ge_50"])
    assert has_ci(res["tokens_saved"]) and res["tokens_saved"]["value"] > 0
    assert has_ci(res["adapter_ms"]) and res["adapter_ms"]["value"] > 0
    for mode in ("adapter_merged", "adapter_unmerged", "system_prompt", "kv_prefix", "base"):
        assert res["latency_ms_per_token"][mode]["ms_per_token"] > 0
    assert res["oracle_lora"]["train_seconds_total"] > 0 and res["oracle_lora"]["steps"] > 0
    assert "ms/token: adapter merged" in format_summary(res)


def test_kv_prefix_behaves_as_the_system_prompt_on_the_real_model(quick):
    _, res = quick
    # Same function, reused cache: teacher-forced KL to the system-prompted model is numerically zero. Greedy
    # token equality is tested exactly on a tiny model (test_evals_decode.py); here the two rows sit in batches
    # padded differently, so an fp32 near-tie may flip one reply: allow one case of difference, no more.
    assert res["kl_to_system"]["kv_prefix"]["value"] < 1e-4
    assert res["kl_to_system"]["system_prompt"]["value"] == 0
    kv, sp = res["pass_rate"]["kv_prefix"]["all"], res["pass_rate"]["system_prompt"]["all"]
    assert abs(kv["value"] - sp["value"]) <= 1 / sp["n"] + 1e-9
    assert res["latency_ms_per_token"]["kv_prefix"]["context_tokens"] < \
        res["latency_ms_per_token"]["system_prompt"]["context_tokens"]


def test_bad_input_is_one_clear_error(tmp_path, quick):
    with pytest.raises(HyperLoRAError, match="unknown split 'nope'"):
        run_eval(tmp_path / "a", split="nope", quick=True, progress=False)
    with pytest.raises(HyperLoRAError, match="does not exist"):
        run_eval(tmp_path / "b", data_dir=tmp_path / "missing", quick=True, progress=False)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(HyperLoRAError, match="not an eval output"):
        run_eval(tmp_path / "c", quick=True, progress=False)
    with pytest.raises(HyperLoRAError, match="unknown eval settings"):
        run_eval(tmp_path / "d", quick=True, progress=False, bogus=1)


def test_a_saved_reader_is_used_instead_of_training_one(tmp_path):
    """``reader=DIR`` (``hyperlora eval --reader``) takes the prompt_tuned LoRA from disk and trains none: a saved
    reader whose B is zero makes prompt_tuned the system prompt itself (KL to it 0 on every case)."""
    import torch

    import hyperlora
    from hyperlora import Adapter
    from hyperlora.base import find_target_modules

    model, _ = hyperlora.load_base()
    weights = {n: (torch.randn(8, m.in_features) * 0.05, torch.zeros(m.out_features, 8))
               for n, m in find_target_modules(model).items()}
    Adapter(weights=weights, rank=8, lora_alpha=16.0, base_model=hyperlora.base.DEFAULT_BASE,
            module_types=sorted({n.rsplit(".", 1)[-1] for n in weights}),
            provenance={"steps": 7, "pairs": 9, "final_loss": 1.5}).save(tmp_path / "reader")
    res = run_eval(tmp_path / "eval", split="test_paraphrase", quick=True, progress=False, reader=tmp_path / "reader",
                   max_manifestos=1, n_qa=2, n_refusal=1)
    assert res["prompt_tuned"]["loaded_from"] == str(tmp_path / "reader")
    assert res["prompt_tuned"]["steps"] == 7 and res["prompt_tuned"]["train_seconds"] == 0
    report = (tmp_path / "eval" / "report.md").read_text()
    assert f"loaded from `{tmp_path / 'reader'}`" in report and f"--reader {tmp_path / 'reader'}" in report
    assert res["kl_to_system"]["prompt_tuned"]["value"] == pytest.approx(0, abs=1e-6)
    assert res["kl_to_system"]["base"]["value"] > 1e-3  # the check can see a difference
    with pytest.raises(HyperLoRAError, match="not an adapter directory"):
        run_eval(tmp_path / "e", quick=True, progress=False, reader=tmp_path / "missing")
