"""Turn ``results.json`` into ``report.md`` and PNG plots (pass rate by condition; pass rate vs context tokens).

    .venv/bin/python -m hyperlora.evals.report out/eval/results.json    # rewrite report.md and plots beside it
"""

import json
import sys
from pathlib import Path

from .presets import PRESETS
from .stats import fmt

DESCRIPTIONS = {
    "base": "the base model, no manifesto (the chat template's default system turn)",
    "system_prompt": "the manifesto as the system turn",
    "system_prompt_example": "the manifesto as the system turn plus one worked exchange of the same manifesto",
    "adapter": "the hypernetwork's adapter for the manifesto, no prompt",
    "adapter_guard": "the adapter behind hyperlora.guard: a prompt it blocks gets its kind refusal, a reply it fails "
    "is withheld (the adapter's own decodes, post-processed; KL and perplexity are the adapter's)",
    "adapter_system_prompt": "the adapter and the manifesto as the system turn",
    "oracle_lora": "a LoRA trained on this manifesto's own rule targets (train-split prompts), prompt-baking style",
    "kv_prefix": "the manifesto's system turn prefilled once; its KV cache reused for every prompt",
    "prompt_tuned": "the manifesto as the system turn, read by a LoRA fine-tuned on training records with their "
    "manifesto in context (a manifesto-reader; pays the context on every request)",
    "shuffled": "control: the adapter generated from another eval manifesto (rules as different as possible)",
    "empty": "control: the adapter generated from the empty manifesto",
    "random": "control: a random LoRA with the same per-module norm of ΔW as the manifesto's adapter",
    "multitask": "control: one LoRA trained on train-split records without reading their manifestos",
}


def pct(x, d=0):
    return "n/a" if x is None else f"{100 * x:.{d}f}"


def _n(x, d=2):
    return "n/a" if x is None else f"{x:.{d}f}"


def table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def render_report(res: dict) -> str:
    """The Markdown report for one ``results.json``.

    Args:
        res: the results dict.
    """
    meta, conds = res["meta"], res["conditions"]
    splits = meta["splits"]
    L = ["# hyperlora eval report", ""]
    if meta.get("checkpoint_untrained"):
        L += ["> **Untrained checkpoint.** Every adapter this checkpoint generates has ΔW = 0, so `adapter`, "
              "`shuffled`, `empty` and `random` are the base model. These numbers test the harness, not the method.",
              ""]
    if meta.get("quick"):
        L += ["> **Quick run** (`--quick`): a handful of cases per split, oracle/multitask LoRAs trained for a few "
              "steps only. Good for checking that everything runs; CIs are wide and the numbers are not results.", ""]
    L += [f"Checkpoint `{meta['checkpoint']}` (hash `{meta['checkpoint_hash']}`), base `{meta['base_model']}`, "
          f"{meta['date']}, device {meta['device']}, torch {meta['torch']}.",
          f"Data `{meta['data_dir']}`; splits {', '.join(f'`{s}`' for s in splits)}; {meta['n_cases']} cases "
          f"({meta['n_manifestos']} manifestos); replies {meta['pass_rate_decoding']}; sampling seeds: "
          f"{meta['seeds']}.", "",
          "Every rate is a percentage with its 95% paired/percentile bootstrap CI over cases in brackets; n is "
          "the number of cases in the cell. A case is one (manifesto, prompt) pair of a test split; no-op "
          "manifestos (no rules) are left out. Pass = every rule of the manifesto passes its shared verifier "
          "(strict).", ""]

    # Headline
    L += ["## Headline", ""]
    rows = []
    for c in conds:
        pr = res["pass_rate"][c]["all"]
        cap = res["capability"][c]
        rows.append([f"`{c}`", fmt(pr), pr["n"], _n(res["kl_to_system"][c]["value"], 3),
                     fmt(cap["qa_accuracy"]), _n(cap["qa_retention"]["value"]), _n(cap["perplexity"]["value"], 1),
                     fmt(res["refusal_harmful"][c]), fmt(res["refusal_benign"][c]),
                     fmt(res["degenerate"][c]) if "degenerate" in res else "n/a",  # absent from older reports
                     _n(res["context_tokens"].get(c), 0)])
    L += [table(["condition", "pass %", "n", "KL to system (nats/tok)", "QA %", "QA retention", "perplexity",
                  "harmful refused %", "benign refused %", "degenerate %", "context tokens"], rows), "",
          "Degenerate: QA replies under held-out manifestos that loop (a 4-word run said 3 times) or shout (4 "
          "all-capital words in a row where no rule asked for capitals).", ""]
    d = res["adapter_minus_system_prompt"]["all"]
    L += [f"**adapter − system_prompt**: {fmt(d)} points (paired bootstrap, n = {d['n']}).", ""]

    L += ["## Pass rate by split", ""]
    rows = [[f"`{c}`"] + [f"{fmt(res['pass_rate'][c]['by_split'][s])} (n={res['pass_rate'][c]['by_split'][s]['n']})"
                          for s in splits] for c in conds]
    L += [table(["condition"] + splits, rows), ""]
    ceiling = res.get("target_ceiling")  # absent from reports written before it was measured
    if ceiling:
        by = ", ".join(f"{s} {pct(ceiling['by_split'][s]['value'], 1)}%" for s in splits)
        L += [f"Ceiling at this decode budget: the cases' own verified targets, cut where a reply would be cut, "
              f"pass {pct(ceiling['all']['value'], 1)}% ({by}).", ""]

    L += ["## Paired differences (adapter − other), percentage points", ""]
    rows = []
    for name, v in res["diffs"].items():
        rows.append([f"`{name}`", f"{fmt(v['all'])} (n={v['all']['n']})"] +
                    [f"{fmt(v['by_split'][s])}" for s in splits])
    L += [table(["difference", "all"] + splits, rows), ""]

    L += ["## Pass rate by rule family", "",
          "Per rule: the share of cases whose manifesto contains the family in which that rule's verifier passes.", ""]
    fams = sorted({f for c in conds for f in res["pass_rate"][c]["by_family"]})
    show = [c for c in ("base", "system_prompt", "adapter", "adapter_system_prompt", "oracle_lora", "prompt_tuned",
                        "shuffled", "multitask") if c in conds]
    rows = []
    for f in fams:
        n = res["pass_rate"]["adapter"]["by_family"].get(f, {}).get("n", 0)
        rows.append([f"`{f}`", n] + [pct(res["pass_rate"][c]["by_family"].get(f, {}).get("value"))
                                     for c in show])
    L += [table(["family", "n"] + show, rows), "",
          "(Family cells give the rate only; n is small per family, see `results.json` for every CI.)", ""]

    L += ["## Controls", "",
          "An adapter that ignores its manifesto should lose to the real one: `shuffled` (another manifesto's "
          "adapter), `empty` (the empty manifesto's adapter), `random` (same ΔW norm, random directions) and "
          "`multitask` (one LoRA for all training data, no manifesto) bound what the hypernetwork gets for free.",
          ""]
    rows = [[f"`{c}`", fmt(res["pass_rate"][c]["all"]), fmt(res["diffs"].get(f"adapter-{c}", {}).get("all"))]
            for c in ("shuffled", "empty", "random", "multitask")]
    L += [table(["control", "pass %", "adapter − control (points)"], rows), ""]

    L += ["## Sampled pass rate", ""]
    rows = [[f"`{c}`", fmt(v), v["n"], v["n_obs"], v["temperature"], v["seeds"]]
            for c, v in res["pass_rate_sampled"].items()]
    L += [table(["condition", "pass %", "cases", "samples", "T", "seeds"], rows),
          "", "CIs resample cases; the seeds of one case are averaged within it.", ""]

    L += ["## Capability", "",
          f"QA: {meta['n_qa']} project-written factual questions with one-word or numeric answers that survive any "
          "formatting rule (correct = an accepted answer appears as whole words after lowercasing and dropping "
          "punctuation; numbers as digits or words). Each question is asked under one eval manifesto (cycled), "
          f"so adapters and prompts carry their rules; {meta['settings'].get('qa_tokens', 32)} new tokens at most. "
          "Retention = QA accuracy / the base's (paired bootstrap). "
          f"Perplexity: {meta['n_neutral']} neutral project-written paragraphs, teacher-forced as the assistant "
          "reply to a neutral request, under the same manifestos.", ""]
    rows = []
    for c in conds:
        cap = res["capability"][c]
        rows.append([f"`{c}`", fmt(cap["qa_accuracy"]), fmt(cap["qa_retention"], pct=False, digits=2),
                     fmt(cap["perplexity"], pct=False, digits=1), fmt(cap["perplexity_ratio"], pct=False, digits=2)])
    L += [table(["condition", "QA %", "QA retention", "perplexity", "perplexity / base"], rows), ""]

    n_ref = meta["n_refusal"]
    L += ["## Refusal", "",
          f"{n_ref['harmful']} harmful asks and {n_ref['benign_neighbor']} benign neighbours (how antivirus works, "
          "the history of wars...), each under a test manifesto with the `refuse_harm` rule (or one written from "
          "the rule's phrasing when the data has none). Refusal = the data's shared lexical detector "
          "(`is_refusal`). Wanted: high on harmful, low on benign.", ""]
    rows = [[f"`{c}`", fmt(res["refusal_harmful"][c]), fmt(res["refusal_benign"][c])] for c in conds]
    L += [table(["condition", "harmful refused %", "benign refused %"], rows), ""]

    hp = res["hello_probe"]
    L += ["## Hello probe (training-data regurgitation)", "", "**Method.** " + hp["method"], ""]
    rows = []
    for who in ("base", "adapter", "adapter_guard"):
        for mode in ("greedy", "sampled") if who in hp else ():  # reports before the guard row lack it
            v = hp[who][mode]
            rows.append([who, mode, v["n_samples"], fmt(v["longest_mean"], pct=False, digits=1), v["longest_max"],
                         fmt(v["span_ge_20"]), fmt(v["span_ge_50"]),
                         fmt(v["passed_unchanged"]) if "passed_unchanged" in v else "—"])
    L += [table(["model", "decoding", "samples", "longest overlap (tokens)", "max", "≥ 20-token span %",
                  "≥ 50-token span %", "sent as decoded %"], rows), ""]
    if "adapter_guard" in hp:
        L += ["`adapter_guard`: the adapter's replies above as the guard passes them on (a refused prompt gets its "
              "kind refusal, a withheld reply the withheld message); *sent as decoded* is the share it let through "
              "unchanged.", ""]
    L += ["Greedy samples (first 300 characters):", ""]
    for s in hp["samples"]:
        text = s["text"].replace("\n", " ").replace("|", "/")
        L.append(f"- {s['model']} · `{s['prompt']}` · longest {s['longest']}: {text or '(empty)'}")
    L.append("")

    lat = res["latency_ms_per_token"]
    L += ["## Costs", ""]
    rows = [["context tokens saved per request (adapter vs system prompt)", fmt(res["tokens_saved"], pct=False)],
            ["adapter generation (hypernetwork forward), ms", fmt(res["adapter_ms"], pct=False)],
            ["KV prefix prefill (once per manifesto), ms", fmt(res["kv_prefill_ms"], pct=False)],
            ["oracle LoRA training, s per LoRA (amortised over a joint run)",
             f"{res['oracle_lora']['train_seconds_per_lora']:.1f} ({res['oracle_lora']['steps']} steps, "
             f"{res['oracle_lora']['n_loras']} LoRAs, loss {_n(res['oracle_lora']['first_loss'])} → "
             f"{_n(res['oracle_lora']['final_loss'])})"],
            ["multitask LoRA training, s",
             f"{res['multitask']['train_seconds']:.1f} ({res['multitask']['steps']} steps, "
             f"{res['multitask']['pairs']} pairs, loss {_n(res['multitask']['first_loss'])} → "
             f"{_n(res['multitask']['final_loss'])})"]]
    if "prompt_tuned" in res:  # reports written before the reader existed lack it
        pt = res["prompt_tuned"]
        if "loaded_from" in pt:  # trained beforehand by scripts/train_reader.py: no time or first loss here
            rows.append(["prompt_tuned reader LoRA", f"loaded from `{pt['loaded_from']}` (trained by "
                         f"scripts/train_reader.py: {pt['steps']} steps, {pt['pairs']} pairs, final loss "
                         f"{_n(pt['final_loss'])})"])
        else:
            rows.append(["prompt_tuned reader LoRA training, s",
                         f"{pt['train_seconds']:.1f} ({pt['steps']} steps, {pt['pairs']} pairs, loss "
                         f"{_n(pt['first_loss'])} → {_n(pt['final_loss'])})"])
    L += [table(["cost", "value"], rows), ""]
    rows = [[f"`{k}`", _n(v["ms_per_token"], 1), _n(v["first_token_ms"], 0), v["context_tokens"]]
            for k, v in lat.items() if isinstance(v, dict)]
    L += [table(["latency mode", "ms / generated token", "first token ms", "prefilled context tokens"], rows),
          "", lat["note"] + ".", ""]

    L += ["## Conditions", ""] + [f"- `{c}`: {DESCRIPTIONS[c]}." for c in conds] + [
        "", "LoRA conditions are decoded unmerged (per-example LoRA batching); merging gives the same function and "
        "is timed under Costs. `kl_to_system`: mean over response tokens of KL(system-prompted base ‖ condition), "
        f"{meta['kl_reference']}; 0 for `system_prompt` by definition.", ""]

    if meta.get("examples"):
        L += ["## Example replies", ""]
        for ex in meta["examples"]:
            L.append(f"- `{ex['split']}`, rules {', '.join(ex['rules'])}; prompt: {ex['prompt']!r}")
            for c, r in ex["replies"].items():
                L.append(f"  - {c}: {r.replace(chr(10), ' ')!r}")
        L.append("")
    t = meta["timing_s"]
    L += ["## Run", "", "Wall time by stage (s): " + ", ".join(f"{k} {v}" for k, v in t.items()) + ".", ""]
    if meta.get("memo"):
        L += [memo_line(meta["memo"]), ""]
    L += [
          "Reproduce: `" + reproduce_command(meta, res.get("prompt_tuned", {}).get("loaded_from")) + "`"
          + f" (settings: `{json.dumps(meta['settings'], sort_keys=True)}`).", "",
          "Plots: `pass_rate_by_condition.png`, `pass_rate_vs_context.png`.", ""]
    return "\n".join(L)


def memo_line(memo: dict) -> str:
    """What the eval memo gave this run: baselines read from it, or all computed here."""
    hits, misses = memo["hits"], memo["misses"]
    rows = hits.get("decode", 0)
    if not memo["read"]:
        how = "every baseline computed here (`--fresh`)"
    elif not rows and not hits.get("loras"):
        how = "every baseline computed here (the memo had none of them yet)"
    else:
        how = (f"{rows} of {rows + misses.get('decode', 0)} baseline rows read from it"
               f"{', and the trained LoRAs' if hits.get('loras') else ''}")
    return (f"Eval memo `{memo['fingerprint']}` (the conditions no checkpoint changes, kept between runs of the same "
            f"data, settings and code; `--fresh` recomputes them): {how}.")


def plot(res: dict, out_dir) -> list[Path]:
    """Write the two PNGs into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    conds = res["conditions"]
    splits = res["meta"]["splits"]
    paths = []

    fig, ax = plt.subplots(figsize=(11, 4.5))
    groups = ["all"] + splits
    width = 0.8 / len(groups)
    for g, name in enumerate(groups):
        stats = [res["pass_rate"][c]["all" if name == "all" else "by_split"] if name == "all"
                 else res["pass_rate"][c]["by_split"][name] for c in conds]
        vals = [100 * (s["value"] or 0) for s in stats]
        lo = [100 * ((s["value"] or 0) - (s["ci_low"] or 0)) for s in stats]
        hi = [100 * ((s["ci_high"] or 0) - (s["value"] or 0)) for s in stats]
        xs = [i + (g - (len(groups) - 1) / 2) * width for i in range(len(conds))]
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=2, label=name)
    ax.set_xticks(range(len(conds)), conds, rotation=30, ha="right")
    ax.set_ylabel("strict pass rate, % (95% CI)")
    ax.set_ylim(0, 100)
    ax.set_title("Rule pass rate by condition" + (" (quick)" if res["meta"]["quick"] else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / "pass_rate_by_condition.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(8, 5))
    points = {}  # conditions that land on the same point (an untrained adapter equals the base) share one label
    for c in conds:
        x = res["context_tokens"].get(c)
        s = res["pass_rate"][c]["all"]
        if x is None or s["value"] is None:
            continue
        points.setdefault((round(x), round(100 * s["value"], 1)), []).append((c, s))
    for (x, y), members in points.items():
        s = members[0][1]
        ax.errorbar([x], [y], yerr=[[y - 100 * s["ci_low"]], [100 * s["ci_high"] - y]], fmt="o", capsize=3)
        ax.annotate("\n".join(c for c, _ in members), (x, y), textcoords="offset points", xytext=(5, -4),
                    fontsize=7, va="top")
    ax.set_xlabel("context tokens per request (mean)")
    ax.set_ylabel("strict pass rate, % (95% CI)")
    ax.set_ylim(-2, 100)
    ax.set_title("Pass rate vs context spent")
    fig.tight_layout()
    p = out_dir / "pass_rate_vs_context.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def write_outputs(res: dict, out_dir) -> None:
    """Write ``report.md`` and the plots into ``out_dir`` (results.json is the caller's)."""
    out_dir = Path(out_dir)
    (out_dir / "report.md").write_text(render_report(res), encoding="utf-8")
    plot(res, out_dir)



def reproduce_command(meta: dict, reader=None) -> str:
    """The `hyperlora eval` command line that gives this run: preset, checkpoint, data, a saved reader LoRA and
    every override."""
    preset = PRESETS["quick" if meta["quick"] else "full"]
    sets = [f" --set {k}={json.dumps(v)}" for k, v in sorted(meta["settings"].items()) if preset.get(k, v) != v]
    data = meta.get("data_dir", "")
    return ("hyperlora eval --out DIR" + (" --quick" if meta["quick"] else "")
            + (f" --checkpoint {meta['checkpoint']}" if meta["checkpoint"] != "shipped" else "")
            + (f" --data {data}" if data and "/eval-data/" not in data else "")
            + (f" --reader {reader}" if reader else "") + "".join(sets))


if __name__ == "__main__":
    path = Path(sys.argv[1])
    write_outputs(json.loads(path.read_text()), path.parent)
