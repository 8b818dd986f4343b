"""Strict rule pass rate of a checkpoint's adapters, own manifesto against a shuffled one: a fast check for pilots.

The same cases as `hyperlora eval` (its full preset: 16 manifestos × 3 prompts per split, greedy, its decode budget),
but only two conditions: `adapter` (the case's own manifesto) and `shuffled` (the next chosen manifesto of the
split), and with `--reader DIR` a third, `prompt_tuned` (that manifesto-reader LoRA with the case's manifesto as the
system turn: the hypernetwork's real competitor, and the teacher of `train.py`'s distillation). Every reply is decoded
in one batched call, rows under different adapters together, as the eval decodes: minutes instead of the full
report's hour; the report stays the measure of record.

The split `train` takes its cases from the records the checkpoint was trained on (its `max_records`), so it tells
underfitting (the training manifestos fail too) from poor generalisation. `--families` adds, per rule family, how
many of the own adapter's cases pass that rule's verifier. `--refusal` adds the report's values rows: the share
of its harmful asks and of their benign neighbours that the adapter refuses (the same 30 + 30 prompts under the
same refusal manifestos). `--qa` adds the capability rows: the eval's 259 QA items under no adapter and under the
adapters of 8 held-out manifestos (QA retention, with its paired CI, and the share of degenerate replies: loops or
capitals no rule asked for). `--cases-out FILE` keeps which cases the own adapter passed; `--against FILE` (another
checkpoint's) prints the held-out difference, paired over the same cases, with its bootstrap CI: the issue's
"beats the shipped checkpoint" test at pilot scale. With `--qa` both keep and compare the QA items too (accuracy and
degenerate replies, paired per item; run both with the same `--splits`, which pick the QA items' manifestos).
`--qa-rule RULE` puts the QA items under 8 held-out manifestos that hold RULE instead: the capability cost of a change
that only such manifestos get (a steering row under refuse_harm), which the default 8 would dilute.

    .venv/bin/python scripts/pass_rate.py [--checkpoint DIR] [--splits train test_paraphrase test_combination]
                                          [--families] [--refusal] [--strength 1.0] [--rank R] [--reader DIR]
                                          [--qa [--qa-rule RULE]] [--cases-out FILE] [--against FILE]
                                          [--mode-rules [--ban RULE]]
    .venv/bin/python scripts/pass_rate.py --compare FILE --against FILE     # two scored pilots, nothing decoded
"""

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from hyperlora.data_gen.verifiers import normalize_rules, verify_each
from hyperlora.evals.capability_data import QA
from hyperlora.evals.data import load_data, resolve_splits, select_cases, train_prompt_ids
from hyperlora.evals.metrics import is_degenerate, is_refusal, qa_correct
from hyperlora.evals.presets import PRESETS
from hyperlora.evals.run import select_refusal_items
from hyperlora.evals.stats import paired_bootstrap
from tqdm.auto import tqdm

from hyperlora import HyperLoRAError
from hyperlora.adapter import Adapter
from hyperlora.base import DEFAULT_MODULE_TYPES, layer_index, load_base, module_type
from hyperlora.generation import generate_each
from hyperlora.generator import HyperLoRA, shipped_checkpoint
from hyperlora.modes import ModeRules, parse_bans


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--splits", nargs="+", default=["test_paraphrase", "test_combination"])
    parser.add_argument("--manifestos", type=int, default=16, help="manifestos per split")
    parser.add_argument("--prompts", type=int, default=3, help="prompts per manifesto (0: no rule cases, for --qa)")
    parser.add_argument("--max-new-tokens", type=int, default=PRESETS["full"]["max_new_tokens"],
                        help="decode budget (default: the full eval's; runs before it was raised used 80)")
    parser.add_argument("--strength", type=float, default=1.0, help="adapter strength (ΔW scale), every adapter")
    parser.add_argument("--scale", action="append", default=[], metavar="PART=F",
                        help="also scale one part of every adapter's ΔW by F (repeatable): a module type (q_proj, "
                        "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj), a decoder layer (layer22), or the "
                        "copy block's rank rows (copy: those past the checkpoint's style rank): where loops come from")
    parser.add_argument("--families", action="store_true", help="also print the own adapter's pass rate per rule")
    parser.add_argument("--rank", type=int, default=None,
                        help="SVD-truncate each adapter to at most this rank first (a per-statement checkpoint's "
                        "adapters have rank r × (statements + 1)); prints the mean relative ΔW error")
    parser.add_argument("--reader", default=None, metavar="DIR",
                        help="also score condition prompt_tuned: this manifesto-reader LoRA (scripts/train_reader.py) "
                        "with the case's manifesto as the system turn")
    parser.add_argument("--refusal", action="store_true",
                        help="also print the share of the report's harmful and benign-neighbour asks refused")
    parser.add_argument("--qa", action="store_true",
                        help="also the eval's QA items (capability), each under no adapter and under the own adapter "
                        "of a held-out manifesto (the first 4 of each split, in turn, at the eval's QA budget): "
                        "accuracy, retention (adapter / base, paired CI) and degenerate replies (loops, unasked "
                        "capitals)")
    parser.add_argument("--qa-rule", metavar="RULE",
                        help="with --qa: the QA items' manifestos are the held-out ones that hold this rule (e.g. "
                        "refuse_harm, up to 8 in all) instead of the first 4 of each split: the capability cost "
                        "where a rule's adapters differ, undiluted")
    parser.add_argument("--cases-out", metavar="FILE", help="write whether the own adapter passed each case (JSON)")
    parser.add_argument("--against", metavar="FILE",
                        help="a --cases-out file of another checkpoint: print this one's held-out pass rate minus "
                        "that one's, paired over the same cases, with its bootstrap CI")
    parser.add_argument("--compare", metavar="FILE",
                        help="decode nothing: pair this --cases-out file against --against's (two pilots scored "
                        "earlier, e.g. a recipe against its control)")
    parser.add_argument("--mode-rules", action="store_true",
                        help="decode every row through ModeRules (tag rules; unclosed tags closed at the end)")
    parser.add_argument("--ban", action="append", default=[], metavar="RULE",
                        help="with --mode-rules: a banned tag transition (human, ai>human), repeatable; none: no ban")
    args = parser.parse_args()
    if args.ban and not args.mode_rules:
        raise SystemExit("pass_rate.py: error: --ban needs --mode-rules")
    if args.qa_rule and not args.qa:
        raise SystemExit("pass_rate.py: error: --qa-rule needs --qa")
    try:
        parse_bans(args.ban)
    except HyperLoRAError as e:
        raise SystemExit(f"pass_rate.py: error: {e}") from None
    scales = parse_scales(args.scale)
    if args.compare:
        if not args.against:
            raise SystemExit("pass_rate.py: error: --compare needs --against FILE")
        mine = read_cases(args.compare)
        a = paired_against(mine["cases"], args.against, mine.get("qa"))
        print_against(a)
        print(json.dumps({"checkpoint": mine["checkpoint"], "against": a}))
        return

    checkpoint = args.checkpoint or shipped_checkpoint()
    hl = HyperLoRA.from_pretrained(checkpoint)
    model, tokenizer = load_base(hl.config.base_model)
    data = load_data(args.data, progress=False)
    # Before the train split is cut below: the eval holds out of its refusal asks every prompt of the whole split.
    values = select_refusal_items(data, resolve_splits(data, None), PRESETS["full"], train_prompt_ids(data))
    seen = hl.hypernet.checkpoint_config.get("train_config", {}).get("max_records", 0)
    if "train" in args.splits and seen:  # train.py trains on the first max_records records only
        data["train"] = data["train"].select(range(min(seen, len(data["train"]))))
    adapters = {}  # one adapter per manifesto text, generated once

    def adapter(text):
        if text not in adapters:
            adapters[text] = scaled(adapter_for(hl, text, args.strength, args.rank), scales, hl.config.rank)
        return adapters[text]

    reader = Adapter.load(args.reader) if args.reader else None
    # Tag rules on every decoded row (ModeRules, as `hyperlora generate --ban` applies them): with no --ban they
    # mask nothing and only close tags a reply leaves open, which is what the modes issue asks to leave pass rates be.
    rules = ModeRules(tokenizer, ban=args.ban) if args.mode_rules else None
    # Every reply of every split (and the refusal asks) is decoded in one call: rows under different adapters share
    # a batch, as in the eval.
    jobs = []  # (split, condition, case or refusal item, adapter, system turn)
    for split in args.splits:
        cases = select_cases(data, [split], args.manifestos, args.prompts)
        order = list(dict.fromkeys(c.manifesto for c in cases))
        partner = {m: order[(i + 1) % len(order)] for i, m in enumerate(order)}
        jobs += [(split, "adapter", c, adapter(c.manifesto), None) for c in cases]
        jobs += [(split, "shuffled", c, adapter(partner[c.manifesto]), None) for c in cases]
        if reader is not None:
            jobs += [(split, "prompt_tuned", c, reader, c.manifesto) for c in cases]
    if args.refusal:
        jobs += [("refusal", it["kind"], it, adapter(it["manifesto"]), None) for it in values]
    prompts = [j[2].prompt if j[0] != "refusal" else j[2]["prompt"] for j in jobs]
    with tqdm(total=len(jobs), desc="decoding", disable=None) as bar:
        replies = generate_each(model, tokenizer, prompts, [j[3] for j in jobs], args.max_new_tokens,
                                progress=bar.update, systems=[j[4] for j in jobs], mode_rules=rules)
    if args.qa:  # at the eval's shorter QA budget: a call of its own
        held = [s for s in args.splits if s != "train"]
        manifestos = qa_manifestos(data, held, args.qa_rule)
        if not manifestos:
            raise SystemExit("pass_rate.py: error: --qa needs a held-out split among --splits"
                             + (f" with a manifesto that holds {args.qa_rule}" if args.qa_rule else ""))
        keys = list(manifestos)
        qa = [({"prompt": q["question"], "answers": q["answers"], "rules": manifestos[keys[j % len(keys)]]}, cond,
               adapter(keys[j % len(keys)]) if cond == "adapter" else None)
              for j, q in enumerate(QA) for cond in ("base", "adapter")]
        with tqdm(total=len(qa), desc="decoding QA", disable=None) as bar:
            qa_replies = generate_each(model, tokenizer, [q["prompt"] for q, _, _ in qa], [a for _, _, a in qa],
                                       PRESETS["full"]["qa_tokens"], progress=bar.update, mode_rules=rules)

    summary, outcomes = {}, {}  # outcomes: case key -> the own adapter passed
    for split in args.splits:
        mine = [(j, r) for j, r in zip(jobs, replies) if j[0] == split]
        if not mine:  # --prompts 0: only --qa or --refusal
            continue
        passed, per_rule = {}, {}
        for (_, cond, c, _, _), reply in mine:
            verdicts = verify_each(c.rules, reply, c.prompt, prompt_kind=c.prompt_kind)
            passed.setdefault(cond, []).append(all(verdicts.values()))
            if cond == "adapter":
                outcomes[json.dumps([split, c.manifesto, c.prompt])] = all(verdicts.values())
            for rule, ok in verdicts.items():
                per_rule.setdefault((cond, rule), []).append(ok)
        n = len(passed["adapter"])
        summary[split] = {"n": n, **{k: round(100 * sum(v) / max(n, 1), 1) for k, v in passed.items()}}
        print(f"{split:17s} n={n:3d}  " + "  ".join(f"{k} {summary[split][k]:5.1f}%" for k in passed), flush=True)
        if args.families:
            for cond in [k for k in ("adapter", "prompt_tuned") if k in passed]:
                rules = sorted({rule for c, rule in per_rule if c == cond})
                print(f"  {cond}: " + ", ".join(f"{r} {sum(per_rule[cond, r])}/{len(per_rule[cond, r])}"
                                               for r in rules))
    if args.refusal:
        refused = {}
        for (split, kind, *_), reply in zip(jobs, replies):
            if split == "refusal":
                refused.setdefault(kind, []).append(is_refusal(reply))
        summary["refusal"] = {kind: round(100 * sum(v) / len(v), 1) for kind, v in refused.items()}
        print("refused: " + ", ".join(f"{k} {v}%" for k, v in summary["refusal"].items()), flush=True)
    if args.qa:
        hits, degenerate = {}, {}
        for (q, cond, _), reply in zip(qa, qa_replies):
            hits.setdefault(cond, []).append(float(qa_correct(reply, q["answers"])))
            degenerate.setdefault(cond, []).append(float(is_degenerate(reply, normalize_rules(q["rules"]))))
        qa_outcomes = {str(j): {"correct": c, "degenerate": d}  # the adapter's, per item, for --cases-out/--against
                       for j, (c, d) in enumerate(zip(hits["adapter"], degenerate["adapter"]))}
        retention = paired_bootstrap(hits["adapter"], hits["base"], ratio=True)
        summary["qa"] = {"n": len(hits["base"]), "manifestos": len(keys),
                         **{f"accuracy_{c}": round(100 * sum(v) / len(v), 1) for c, v in hits.items()},
                         "retention": {k: round(retention[k], 3) for k in ("value", "ci_low", "ci_high")},
                         **{f"degenerate_{c}": round(100 * sum(v) / len(v), 1) for c, v in degenerate.items()}}
        r = summary["qa"]
        print(f"QA (n={r['n']}, {r['manifestos']} manifestos): base {r['accuracy_base']}%, adapter "
              f"{r['accuracy_adapter']}%, retention {r['retention']['value']} [{r['retention']['ci_low']}, "
              f"{r['retention']['ci_high']}]; degenerate replies base {r['degenerate_base']}%, adapter "
              f"{r['degenerate_adapter']}%", flush=True)
    if TRUNCATION_ERRORS:
        summary["truncation_error_mean"] = round(sum(TRUNCATION_ERRORS) / len(TRUNCATION_ERRORS), 4)
        print(f"truncated {len(TRUNCATION_ERRORS)} adapters to rank {args.rank}: mean relative ΔW error "
              f"{summary['truncation_error_mean']}", flush=True)
    if args.cases_out:
        Path(args.cases_out).write_text(json.dumps({"checkpoint": str(checkpoint), "cases": outcomes,
                                                    **({"qa": qa_outcomes} if args.qa else {})}) + "\n")
    if args.against:
        summary["against"] = paired_against(outcomes, args.against, qa_outcomes if args.qa else None)
        print_against(summary["against"])
    print(json.dumps({"checkpoint": str(checkpoint), "reader": args.reader, "strength": args.strength,
                      "scale": scales, "rank": args.rank, "max_new_tokens": args.max_new_tokens, "splits": summary}))


TRUNCATION_ERRORS: list[float] = []


def read_cases(path) -> dict:
    """A ``--cases-out`` file; a missing or foreign file is one line."""
    try:
        cases = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"pass_rate.py: error: cannot read cases file {path}: {e}") from None
    if not isinstance(cases, dict) or "cases" not in cases:
        raise SystemExit(f"pass_rate.py: error: {path} is not a --cases-out file")
    return cases


def print_against(a: dict):
    if "value" in a:
        print(f"held-out minus {a['checkpoint']}: {a['value']:+.1f} points [{a['ci_low']:+.1f}, "
              f"{a['ci_high']:+.1f}] over {a['n']} paired cases", flush=True)
    for what in ("correct", "degenerate"):
        if f"qa_{what}" in a:
            d = a[f"qa_{what}"]
            print(f"QA {what} minus {a['checkpoint']}: {d['value']:+.1f} points [{d['ci_low']:+.1f}, "
                  f"{d['ci_high']:+.1f}] over {d['n']} paired items", flush=True)


def qa_manifestos(data, splits: list[str], rule: str | None = None) -> dict:
    """{manifesto: rules} that the QA items are put under, in turn: the first 4 rule-bearing manifestos of each split,
    or with ``rule`` the first 8 in all that hold it."""
    out = {}
    for split in splits:
        for c in select_cases(data, [split], 10**6 if rule else 4, 1):
            if rule is None or any(r["id"] == rule for r in c.rules):
                out.setdefault(c.manifesto, c.rules)
    return dict(list(out.items())[:8]) if rule else out


def paired_against(outcomes: dict, path, qa: dict | None = None) -> dict:
    """This run's own-adapter pass rate minus another run's (its ``--cases-out`` file) over the held-out cases both
    decoded (every split but ``train``), in points, with the eval's paired bootstrap CI; with ``qa`` (this run's
    per-item QA outcomes) and QA items in the file, also the QA accuracy and degenerate-reply differences
    (``qa_correct``, ``qa_degenerate``) over the items both decoded."""
    other = read_cases(path)

    def diff(mine: list, theirs: list) -> dict:
        d = paired_bootstrap([float(x) for x in mine], [float(x) for x in theirs])
        return {"n": len(mine), **{k: round(100 * d[k], 1) for k in ("value", "ci_low", "ci_high")}}

    out = {"checkpoint": other["checkpoint"]}
    keys = [k for k in outcomes if k in other["cases"] and json.loads(k)[0] != "train"]
    if keys:
        out.update(diff([outcomes[k] for k in keys], [other["cases"][k] for k in keys]))
    items = [j for j in (qa or {}) if j in other.get("qa", {})]
    for what in ("correct", "degenerate") if items else ():
        out[f"qa_{what}"] = diff([qa[j][what] for j in items], [other["qa"][j][what] for j in items])
    if not keys and not items:
        raise SystemExit(f"pass_rate.py: error: {path} shares no held-out case or QA item with this run")
    return out


def parse_scales(items: list[str]) -> dict:
    """``["q_proj=0.5", "copy=0"]`` -> ``{"q_proj": 0.5, "copy": 0.0}``; a malformed item is one line."""
    scales = {}
    for item in items:
        part, _, value = item.partition("=")
        try:
            scales[part] = float(value)
        except ValueError:
            raise SystemExit(f"pass_rate.py: error: --scale wants PART=F, got {item!r}") from None
        if not (part in DEFAULT_MODULE_TYPES or part == "copy" or (part.startswith("layer") and part[5:].isdigit())):
            raise SystemExit(f"pass_rate.py: error: --scale part {part!r} is not a module type, layerN or copy")
    return scales


def scaled(adapter, scales: dict, style_rank: int):
    """``adapter`` with the ΔW of each part in ``scales`` multiplied by its factor (B's columns, so parts that
    overlap multiply). ``copy`` is the rank rows past ``style_rank``: the copy block's, where a checkpoint has one."""
    if not scales:
        return adapter
    weights = {}
    for name, (A, B) in adapter.weights.items():
        factor = torch.ones(B.shape[1], dtype=B.dtype)
        for part, f in scales.items():
            if part == "copy":
                factor[style_rank:] *= f
            elif part in (module_type(name), f"layer{layer_index(name)}"):
                factor *= f
        weights[name] = (A, B * factor)
    return dataclasses.replace(adapter, weights=weights)


def adapter_for(hl, text: str, strength: float, rank: int | None):
    """The checkpoint's adapter for ``text``, SVD-truncated to ``rank`` when it has more (its error recorded)."""
    adapter = hl.generate_adapter(text, strength)
    if rank is None or adapter.rank <= rank:
        return adapter
    truncated = Adapter.compose([adapter], rank=rank)
    TRUNCATION_ERRORS.append(truncated.provenance["truncation_error"])
    return truncated


if __name__ == "__main__":
    main()
