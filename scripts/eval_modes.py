"""Tagged modes at inference: sampled replies with and without ModeRules, scored from the replies themselves.

    .venv/bin/python scripts/eval_modes.py --data out/modes --out out/eval-modes [--adapter DIR] [--base NAME]
        [--n 72] [--seeds 3] [--max-new-tokens 96] [--ban ai>human] [--temperature 0.7] [--batch-size 16]
    .venv/bin/python scripts/eval_modes.py --data out/modes --out DIR --rescore RESULTS [--head FILE]

Prompts come from the held-out split of a `hyperlora data modes` corpus (`--split test`: its quoted lines and
prompts never appear in any seed's train split), drawn evenly over the kinds (quote, answer, human_voice, ...).
Every prompt is sampled at `--temperature` once per seed (`--n` x `--seeds` replies, 216 by default) under two
conditions that share every batch and random seed: `plain` (ModeRules with no ban: a no-op on the scores) and
`ruled` (ModeRules with `--ban`). Both get unclosed tags closed at the end (a reply cut at `--max-new-tokens` is
not the model's fault), so the conditions differ only by the masking. Per condition:

- well_formed: share of replies whose tags nest and close (`hyperlora.modes.well_formed`; a reply without tags
  counts as well-formed), also among the replies with a tag; any_tag: share with any mode tag at all;
- violations: share of replies with an opening the bans forbid, and their mean count (`hyperlora.modes.violations`);
- mode_accuracy: the reply is in the mode its record asks for: an `<ai>` record's reply passes the `modes` rule's
  verifier (one `<ai>` span, every quotation tagged `<human>`), a `<human>` record's reply is one `<human>` span;
- rosiness (the rosy pipeline's encoder with `--head`, by default `rosiness-v2`, the head refitted on spoken lines:
  `data_gen/rosy/tune_speech.py`) of the words inside `<ai>` against those inside `<human>` (read by the innermost
  tag), with the within-reply paired difference where a reply has both;
- seconds per decoding step in each condition (steps counted by the processor's calls, batches interleaved) and
  their ratio: the processor's cost.

Means carry 95% bootstrap CIs over prompts (the seeds of one prompt resample together; `evals/stats.py`);
ruled - plain differences are paired. Writes `--out`/results.json (every reply included) and report.md at once,
and prints the table.
"""

import argparse
import contextlib
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from hyperlora.data_gen.families_optin import check_modes, one_span
from hyperlora.data_gen.modes import load_modes
from hyperlora.evals.stats import bootstrap, fmt, paired_bootstrap

from hyperlora.errors import HyperLoRAError
from hyperlora.io import atomic_dir
from hyperlora.modes import TAG, ModeRules, mode_texts, parse_bans, violations, well_formed

CONDITIONS = ("plain", "ruled")


class CountingRules(ModeRules):
    """ModeRules that counts its calls: one per decoding step of a batch, so seconds / steps is the step time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = 0

    def __call__(self, input_ids, scores):
        self.steps += 1
        return super().__call__(input_ids, scores)


def pick_cases(records: list[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` records spread evenly over their kinds (round robin in a seeded order); all of them if fewer."""
    by_kind = defaultdict(list)
    for r in sorted(records, key=lambda r: r["id"]):
        by_kind[r["kind"]].append(r)
    rng = random.Random(seed)
    for kind in sorted(by_kind):
        rng.shuffle(by_kind[kind])
    cases, queues = [], [by_kind[k] for k in sorted(by_kind)]
    while len(cases) < n and any(queues):
        for q in queues:
            if q and len(cases) < n:
                cases.append(q.pop())
    return cases


def mode_correct(reply: str, expected: str) -> bool:
    """Whether a reply is in the mode its record asks for (see the module docstring)."""
    return check_modes(reply) if expected == "ai" else one_span(reply, expected)


def decode(model, tokenizer, cases, seeds, ban, max_new_tokens=96, temperature=0.7, batch_size=16, progress=True):
    """Sample every case once per seed under both conditions, batches interleaved.

    Returns:
        ``(replies, timing)``: ``replies[condition][case][seed index]`` and ``timing[condition] = {"seconds",
        "steps"}``.
    """
    from tqdm.auto import tqdm

    from hyperlora.generation import generate

    rules = {"plain": CountingRules(tokenizer, ban=()), "ruled": CountingRules(tokenizer, ban=ban)}
    replies = {c: [[None] * len(seeds) for _ in cases] for c in CONDITIONS}
    seconds = dict.fromkeys(CONDITIONS, 0.0)
    prompts = [c["prompt"] for c in cases]
    with tqdm(total=2 * len(seeds) * len(cases), desc="decoding", unit="reply", disable=not progress) as bar:
        for j, seed in enumerate(seeds):
            for start in range(0, len(cases), batch_size):
                batch = prompts[start : start + batch_size]
                for cond in CONDITIONS:  # same batch, same random seed: the masking is the only difference
                    t0 = time.perf_counter()
                    out = generate(model, tokenizer, batch, max_new_tokens=max_new_tokens, batch_size=len(batch),
                                   do_sample=True, temperature=temperature, seed=seed * 100_003 + start,
                                   mode_rules=rules[cond])
                    seconds[cond] += time.perf_counter() - t0
                    for i, reply in enumerate(out):
                        replies[cond][start + i][j] = reply
                    bar.update(len(batch))
    return replies, {c: {"seconds": seconds[c], "steps": rules[c].steps} for c in CONDITIONS}


def _stat(per_case: list[list[float]]) -> dict:
    """Bootstrap mean over the cases that have at least one value (NaN marks a reply without one)."""
    kept = [v for v in per_case if any(not math.isnan(x) for x in v)]
    return bootstrap(kept)


def score(cases, replies, ban, rosiness=None) -> dict:
    """Every metric of one run, computed from the replies.

    Args:
        cases: the corpus records decoded (``mode`` is what each asks for).
        replies: ``replies[condition][case][seed]``.
        ban: the rule specs of the ruled condition (violations count against them in both conditions).
        rosiness: ``texts -> scores`` (the rosy classifier), or None to skip that metric.
    """
    parse_bans(ban)
    out = {}
    span_texts = {c: [[mode_texts(r) for r in row] for row in replies[c]] for c in CONDITIONS}
    scores = _scored(rosiness, [span_texts[c] for c in CONDITIONS]) if rosiness is not None else {}
    per = {}
    for c in CONDITIONS:
        rows = replies[c]
        m = {
            "well_formed": [[float(well_formed(r)) for r in row] for row in rows],
            "any_tag": [[float(bool(TAG.search(r))) for r in row] for row in rows],
            "violating": [[float(violations(r, ban) > 0) for r in row] for row in rows],
            "violations": [[float(violations(r, ban)) for r in row] for row in rows],
            "mode_accuracy": [[float(mode_correct(r, case["mode"])) for r in row] for case, row in zip(cases, rows)],
        }
        stats = {k: bootstrap(v) for k, v in m.items()}
        # Among replies that write a tag at all (a reply without tags is trivially well-formed).
        stats["well_formed_tagged"] = _stat([[w if t else float("nan") for w, t in zip(rw, rt)]
                                             for rw, rt in zip(m["well_formed"], m["any_tag"])])
        for mode in ("ai", "human"):
            stats[f"mode_accuracy_{mode}"] = bootstrap([v for case, v in zip(cases, m["mode_accuracy"])
                                                        if case["mode"] == mode])
        if rosiness is not None:
            stats.update(_rosiness_stats(span_texts[c], scores))
        per[c], out[c] = m, stats
    out["ruled_minus_plain"] = {k: paired_bootstrap(per["ruled"][k], per["plain"][k])
                                for k in ("well_formed", "violating", "mode_accuracy")}
    return out


def target_rosiness(cases, rosiness) -> dict:
    """The rosiness of the corpus's own replies to the same prompts, read the same way: what a model that wrote its
    training targets exactly would score, so a gap between the modes that the targets lack is not blamed on the
    model (nor one the model lacks on the data)."""
    spans = [[mode_texts(c["response"])] for c in cases]  # one "seed" a case
    return _rosiness_stats(spans, _scored(rosiness, [spans]))


def _scored(rosiness, span_tables) -> dict:
    """``{text: rosiness}`` for every distinct span text of the tables (``[case][seed] -> {mode: text}``), scored in
    one call."""
    texts = sorted({t for table in span_tables for row in table for d in row for t in d.values()})
    return dict(zip(texts, (float(x) for x in rosiness(texts)))) if texts else {}


def _rosiness_stats(spans, scores: dict) -> dict:
    """Mean rosiness inside ``<ai>`` and inside ``<human>`` over cases, and their within-reply difference (NaN
    where a reply lacks a mode)."""
    nan = float("nan")
    ai = [[scores[d["ai"]] if "ai" in d else nan for d in row] for row in spans]
    human = [[scores[d["human"]] if "human" in d else nan for d in row] for row in spans]
    both = [[a - h for a, h in zip(ra, rh)] for ra, rh in zip(ai, human)]
    return {"rosiness_ai": _stat(ai), "rosiness_human": _stat(human), "rosiness_ai_minus_human": _stat(both)}


def run(model, tokenizer, cases, seeds=(0, 1, 2), ban=("ai>human",), max_new_tokens=96, temperature=0.7,
        batch_size=16, rosiness=None, progress=True) -> dict:
    """Decode and score: the ``results.json`` content (without the settings the caller adds)."""
    replies, timing = decode(model, tokenizer, cases, list(seeds), list(ban), max_new_tokens, temperature,
                             batch_size, progress)
    metrics = score(cases, replies, list(ban), rosiness)
    if rosiness is not None:
        metrics["targets"] = target_rosiness(cases, rosiness)
    per_step = {c: timing[c]["seconds"] / max(1, timing[c]["steps"]) for c in CONDITIONS}
    timing = {c: {**timing[c], "ms_per_step": round(1000 * per_step[c], 3)} for c in CONDITIONS}
    ratio = per_step["ruled"] / per_step["plain"] if per_step["plain"] > 0 else None
    return {"metrics": metrics, "timing": {**timing, "ruled_over_plain": ratio},
            "n_cases": len(cases), "n_replies": len(cases) * len(seeds),
            "cases": [{"id": c["id"], "kind": c["kind"], "mode": c["mode"], "prompt": c["prompt"],
                       **{cond: replies[cond][i] for cond in CONDITIONS}} for i, c in enumerate(cases)]}


ROWS = [("well_formed", "tags well-formed", True), ("well_formed_tagged", "  among replies with a tag", True),
        ("any_tag", "replies with any tag", True),
        ("violating", "replies with a banned opening", True), ("violations", "banned openings a reply", False),
        ("mode_accuracy", "mode accuracy (all)", True), ("mode_accuracy_ai", "  asked <ai>", True),
        ("mode_accuracy_human", "  asked <human>", True), ("rosiness_ai", "rosiness inside <ai>", False),
        ("rosiness_human", "rosiness inside <human>", False),
        ("rosiness_ai_minus_human", "  <ai> - <human>, same reply", False)]


def table(results: dict) -> str:
    """The markdown table of both conditions (95% CIs in brackets, n = prompts)."""
    m = results["metrics"]
    lines = ["| metric | plain | ruled | ruled - plain |", "| --- | --- | --- | --- |"]
    for key, label, pct in ROWS:
        if key not in m["plain"]:
            continue
        diff = fmt(m["ruled_minus_plain"][key], pct) if key in m["ruled_minus_plain"] else ""
        cells = [f"{fmt(m[c][key], pct, 1 if pct else 3)} (n {m[c][key]['n']})" for c in CONDITIONS]
        lines.append(f"| {label}{' (%)' if pct else ''} | {cells[0]} | {cells[1]} | {diff} |")
    if "targets" in m:  # the corpus's own replies to the same prompts: the data's side of the rosiness rows
        tg = m["targets"]
        lines.append(f"| rosiness of the corpus's own replies: <ai> / <human> / same reply | "
                     f"{fmt(tg['rosiness_ai'], False, 3)} (n {tg['rosiness_ai']['n']}) / "
                     f"{fmt(tg['rosiness_human'], False, 3)} (n {tg['rosiness_human']['n']}) / "
                     f"{fmt(tg['rosiness_ai_minus_human'], False, 3)} (n {tg['rosiness_ai_minus_human']['n']}) | | |")
    t = results["timing"]
    ratio = f"{t['ruled_over_plain']:.3f}" if t["ruled_over_plain"] else "n/a"
    lines.append(f"| ms per decoding step | {t['plain']['ms_per_step']:.1f} ({t['plain']['steps']} steps) | "
                 f"{t['ruled']['ms_per_step']:.1f} ({t['ruled']['steps']} steps) | ratio {ratio} |")
    return "\n".join(lines)


def report(results: dict) -> str:
    s = results["settings"]
    lines = ["# Tagged modes: replies with and without ModeRules", "",
             f"Model: base `{s['base']}`, adapter `{s['adapter'] or 'none'}`. Prompts: {results['n_cases']} from "
             f"`{s['data']}` ({s['split']} split), {len(s['seeds'])} seeds, temperature {s['temperature']}, "
             f"{s['max_new_tokens']} new tokens: {results['n_replies']} replies a condition. `plain`: no ban; "
             f"`ruled`: ban {', '.join(s['ban'])}. Unclosed tags are closed at the end in both.", "",
             f"Rosiness: head `{s.get('head') or 'rosiness-v1'}`.", "",
             table(results), "", f"Command: `{s['command']}`"]
    if s.get("rescored"):
        lines.append(f"Scored again from `{s['rescored']['from']}`: `{s['rescored']['command']}`")
    lines += ["", "## Sample replies", ""]
    for case in results["cases"][:6]:
        prompt = case["prompt"][-1]["content"] if isinstance(case["prompt"], list) else case["prompt"]
        lines += [f"- **{case['kind']}** (asks `<{case['mode']}>`): {prompt[:160]}"]
        for cond in CONDITIONS:
            lines.append(f"  - {cond}: `{case[cond][0][:240]}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--data", required=True, help="a `hyperlora data modes` corpus directory")
    parser.add_argument("--out", required=True, help="directory to write results.json and report.md to")
    parser.add_argument("--adapter", help="PEFT LoRA adapter directory (default: none, the base model)")
    parser.add_argument("--base", help="base model (default: the adapter's, else smollm2-135m-instruct)")
    parser.add_argument("--split", default="test", help="corpus split the prompts come from (default test)")
    parser.add_argument("--n", type=int, default=72, help="prompts (default 72: 216 replies with 3 seeds)")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per prompt (default 3)")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="reply length cap (default 96)")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    parser.add_argument("--ban", action="append", metavar="RULE",
                        help="banned transition of the ruled condition, repeatable (default ai>human)")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts decoded together (default 16)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default torch's; 1 when another job holds "
                        "the cores: two threads fighting a training run for 2 cores made steps ~40x slower here)")
    parser.add_argument("--no-rosiness", action="store_true", help="skip the rosiness classifier")
    parser.add_argument("--head", help="rosiness head JSON (default: rosiness-v2, fitted on spoken lines; v1, the "
                        "documents' head the rosy pipeline routes with, cannot tell a kind line from a rude one)")
    parser.add_argument("--rescore", metavar="RESULTS",
                        help="score the replies of an earlier run's results.json again instead of decoding (its "
                        "cases are read from --data; its settings and timing are kept), e.g. with another --head")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    ban = args.ban or ["ai>human"]
    parse_bans(ban)
    for name in ("n", "seeds", "max_new_tokens", "batch_size"):
        if getattr(args, name) < 1:
            raise HyperLoRAError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise HyperLoRAError(f"--threads must be at least 1, got {args.threads}")
    if not 0 < args.temperature <= 5:
        raise HyperLoRAError(f"--temperature must be within (0, 5], got {args.temperature}")
    if Path(args.out).exists() and not args.force:  # before any model loads
        raise HyperLoRAError(f"{args.out} already exists (use --force to replace it)")
    if args.head and not Path(args.head).is_file():
        raise HyperLoRAError(f"--head {args.head}: no such file")
    if args.rescore:
        return rescore(args, argv)
    try:
        cases = pick_cases(load_modes(args.data, args.split), args.n)
    except ValueError as e:
        raise HyperLoRAError(str(e)) from e
    if not cases:
        raise HyperLoRAError(f"{args.data} has no {args.split} records")

    from hyperlora.adapter import Adapter
    from hyperlora.base import DEFAULT_BASE, load_base
    from hyperlora.cli import quiet_libraries

    quiet_libraries()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    adapter = Adapter.load(args.adapter) if args.adapter else None
    base = args.base or (adapter and adapter.base_model) or DEFAULT_BASE
    model, tokenizer = load_base(base)
    rosiness, head = (None, None) if args.no_rosiness else rosiness_of(args.head)
    start = time.perf_counter()
    with adapter.applied_to(model) if adapter else contextlib.nullcontext():
        results = run(model, tokenizer, cases, seeds=range(args.seeds), ban=ban, max_new_tokens=args.max_new_tokens,
                      temperature=args.temperature, batch_size=args.batch_size, rosiness=rosiness,
                      progress=not args.quiet)
    import torch

    results["settings"] = {"data": args.data, "split": args.split, "adapter": args.adapter, "base": base,
                           "seeds": list(range(args.seeds)), "ban": ban, "temperature": args.temperature,
                           "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
                           "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - start, 1),
                           "head": head, "command": command(argv)}
    return write(results, args.out)


def command(argv) -> str:
    return " ".join(["scripts/eval_modes.py"] + (argv if argv is not None else sys.argv[1:]))


def rosiness_of(path):
    """(``texts -> rosiness``, the head's version) with the head in ``path`` (default: rosiness-v2) and the rosy
    pipeline's encoder."""
    from hyperlora.data_gen.rosy.steps import Score
    from hyperlora.data_gen.rosy.tune_speech import V2

    scorer = Score(path or V2)
    return (lambda texts: scorer.score(texts)[0]), scorer.head.version


def rescore(args, argv) -> dict:
    """The metrics of an earlier run's replies, scored again (no model loads): its cases must be this corpus's."""
    try:
        previous = json.loads(Path(args.rescore).read_text())
        replies = {c: [case[c] for case in previous["cases"]] for c in CONDITIONS}
        ban, settings = previous["settings"]["ban"], previous["settings"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HyperLoRAError(f"--rescore {args.rescore}: not an eval_modes results.json ({e})") from e
    try:
        cases = pick_cases(load_modes(args.data, settings["split"]), len(previous["cases"]))
    except ValueError as e:
        raise HyperLoRAError(str(e)) from e
    if [c["id"] for c in cases] != [c["id"] for c in previous["cases"]]:
        raise HyperLoRAError(f"--rescore {args.rescore}: its cases are not the ones {args.data} gives")
    rosiness, head = (None, None) if args.no_rosiness else rosiness_of(args.head)
    metrics = score(cases, replies, ban, rosiness)
    if rosiness is not None:
        metrics["targets"] = target_rosiness(cases, rosiness)
    results = {**previous, "metrics": metrics,
               "settings": {**settings, "head": head, "rescored": {"from": args.rescore, "command": command(argv)}}}
    return write(results, args.out)


def write(results: dict, out) -> dict:
    """results.json and report.md, all at once; the table printed."""
    with atomic_dir(out, force=True) as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
        (tmp / "report.md").write_text(report(results))
    print(table(results))
    print(f"wrote {out}/results.json and report.md ({results['n_replies']} replies a condition, "
          f"{results['settings']['seconds']} s)")
    return results


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


if __name__ == "__main__":
    try:
        main()
    except HyperLoRAError as e:
        raise SystemExit(f"eval_modes: {e}") from None
