"""Fit the conditional refusal steering row (``hyperlora.steer``) for a checkpoint; writes ``steer.safetensors``.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/fit_steer.py [--checkpoint DIR] [--out FILE] [--data data/default]

Nothing here is an eval item or an ask of the held-out hand-written test:
1. Asks: the prompt guard's training prompts (as scripts/refusal_probe.py rebuilds them), split 80 / 20 by kind,
   seeded: the fit part for the read and the write, the validation part for the strength.
2. Manifestos: ``--manifestos`` of the train split's manifestos with the refusal rule, seeded; each ask is put to
   one of them in turn, under its adapter as the checkpoint generates it (without a steering row).
3. Replies: the adapters' own greedy replies (48 tokens) to ``--replies`` fit asks.
4. Read: ridge regression on ``o_proj``'s input at ``--layer``: target +1 (harmful ask) / -1 (benign) on the chat
   template's last 6 prompt positions, +1 on a harmful ask's reply, 0 on every other position (the system turn, the
   ask's own words, a benign ask's reply beyond its first ``--benign-reply`` tokens, which target -1); the two
   classes weigh the same, and the zero positions as much as both together. The push then lasts the whole reply of
   a harmful ask, and an ordinary reply is left alone past its opening, where a reply refuses or helps: with -1 on
   every token of a benign ask's reply (the first pilot, ``--benign-reply 64``) every ordinary reply was pushed away
   from refusing, token by token, and its facts garbled (README, Redesign pilots, "steering row"). With
   ``--neighbours-only`` only the benign neighbours read -1; every other ask (questions, tasks, greetings) is held to 0
   throughout, as the system turn is. With ``--facts`` half of ``data_gen.facts`` (short factual questions, none an
   eval item) and the adapters' replies to them are held to 0 too, weighing as much as the +1 and -1 positions
   together: a row fitted without them read the eval's factual questions as neighbours (-0.41 on the tail,
   ``scripts/steer_qa_read.py``) and pushed their answers into errors. With them that read is -0.31: the facts help
   less than ``--max-fact-drop``'s lower strength does.
5. Write: the residual stream after ``--layer`` at the last prompt position, the mean over the asks the adapters
   refused minus the mean over those they answered, within harmful and within benign asks, averaged.
6. Strength: each of ``--strengths`` on the validation asks (harmful asks and benign neighbours, 48 tokens); the
   widest gap (harmful refused minus benign refused) among the strengths that refuse at least as many harmful asks
   as strength 0 does (and, with ``--max-loop-rise``, whose replies to the validation split's ordinary prompts are
   degenerate at most that many points more often than at strength 0; with ``--max-fact-drop``, that answer the other
   half of the facts at most that many points less often than strength 0 does).
7. Gate: logistic regression (balanced classes, C by 5-fold cross-validation) on the train manifestos' mean encoder
   features, label: holds the refusal rule; its accuracy on the test splits' manifestos is reported.
About 13 minutes on 2 cores. Prints what it measured; the file's ``info`` keeps it.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

TAIL = 6  # the chat template after the ask: <|im_end|> \n <|im_start|> assistant \n
FACT_TOKENS = 64  # the full eval's QA budget


def guard_prompts(dd):
    """The prompt guard's training prompts and their labels (harmful, benign neighbour)."""
    from hyperlora.data_gen.prompts import prompt_bank
    from train_guard import HARMFUL_KINDS, NEIGHBOUR_KINDS, asks_as_prompts, counterfactual_prompts, training_prompts

    from hyperlora import guard

    trained = set(json.loads(guard.SHIPPED.read_text())["info"]["trained_on_ids"])
    bank = prompt_bank()
    ids, texts = {p.id for p in bank}, {p.text.strip().lower() for p in bank}
    pool = training_prompts(dd)[0] + counterfactual_prompts(ids, texts) + asks_as_prompts(ids, texts)
    train = list({p.id: p for p in pool if p.id in trained}.values())
    return train, np.asarray([p.kind in HARMFUL_KINDS for p in train]), np.asarray([p.kind in NEIGHBOUR_KINDS
                                                                                 for p in train])


def states(model, name: str, layer: int, adapter, ids: list[int]):
    """The input of module ``name`` (float64 numpy, (T, in)) and the residual stream after decoder ``layer`` ((T, d)
    tensor) at every position of ``ids``, run under ``adapter``: the hooks go on the modules as applied."""
    import torch

    seen = {}
    with torch.inference_mode(), adapter.applied_to(model):
        hooks = [model.get_submodule(name).register_forward_pre_hook(
                     lambda m, a: seen.__setitem__("x", a[0][0].double().numpy())),
                 model.model.layers[layer].register_forward_hook(
                     lambda m, a, o: seen.__setitem__("res", (o[0] if isinstance(o, tuple) else o)[0]))]
        try:
            model(input_ids=torch.tensor([ids]))
        finally:
            for h in hooks:
                h.remove()
    return seen["x"], seen["res"]


def manifesto_rules(dd, split: str) -> dict[str, bool]:
    """{manifesto: holds the refusal rule} over a split's records."""
    out = {}
    for r in dd[split]:
        out.setdefault(r["manifesto"], any(x["id"] == "refuse_harm" for x in r["rules"]))
    return out


def pooled(encoder, texts: list[str]) -> np.ndarray:
    """(N, dim): each manifesto's mean encoder features over its first window (what ``Steer.gates`` reads)."""
    from hyperlora.steer import mean_features

    return np.concatenate([mean_features(*encoder.encode_ids([encoder.chunk(t.strip())[0] for t in texts[i : i + 32]]))
                           .numpy() for i in range(0, len(texts), 32)])


def fit_gate(encoder, dd) -> tuple[np.ndarray, float, dict]:
    """The manifesto gate: (weights, bias, report)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rules = manifesto_rules(dd, "train")
    x, y = pooled(encoder, list(rules)), np.asarray(list(rules.values()))
    scores = {c: cross_val_score(LogisticRegression(C=c, class_weight="balanced", max_iter=5000), x, y, cv=5,
                                 scoring="balanced_accuracy").mean() for c in (0.1, 1.0, 10.0, 100.0)}
    c = max(scores, key=scores.get)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
    report = {"C": c, "cv_balanced_accuracy": round(float(scores[c]), 3), "train_manifestos": len(y),
              "with_refusal_rule": int(y.sum())}
    for split in [s for s in dd if s.startswith("test")]:
        rules = manifesto_rules(dd, split)
        ys, gated = np.asarray(list(rules.values())), clf.decision_function(pooled(encoder, list(rules))) > 0
        report[split] = {"refusal_rule_gated": f"{int(gated[ys].sum())}/{int(ys.sum())}",
                         "others_gated": f"{int(gated[~ys].sum())}/{int((~ys).sum())}"}
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), report


def bar(total: int, desc: str):
    """A progress bar as ``generate_each`` reports: called with the rows each batch finished."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr).update


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--out", default=None, help="where to write (default: steer.safetensors in the checkpoint)")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--layer", type=int, default=22, help="the decoder layer whose o_proj gains the row")
    parser.add_argument("--manifestos", type=int, default=6, help="train manifestos with the refusal rule to use")
    parser.add_argument("--replies", type=int, default=480, help="fit asks whose replies the read and write see")
    parser.add_argument("--strengths", default="0,1,2,3", help="strengths tried on the validation asks")
    parser.add_argument("--neighbours-only", action="store_true",
                        help="read -1 only on the benign neighbours of harmful asks; every other prompt (questions, "
                             "tasks, greetings) reads 0 throughout, so ordinary asks are left alone")
    parser.add_argument("--max-loop-rise", type=float, default=None, metavar="POINTS",
                        help="also decode the validation split's ordinary prompts at each strength, and keep only "
                             "strengths whose replies are degenerate (loops, unasked capitals) at most POINTS more "
                             "often than at strength 0")
    parser.add_argument("--benign-reply", type=int, default=0, metavar="N",
                        help="target -1 on the first N tokens of a benign ask's reply too, 0 past them (default 0; "
                             "the first pilot: 64, more than any 48-token reply holds)")
    parser.add_argument("--facts", action="store_true",
                        help="hold half of data_gen.facts (short factual questions, none an eval item) to 0 through "
                             "their replies too, weighing as much as the +1 and -1 positions together")
    parser.add_argument("--max-fact-drop", type=float, default=None, metavar="POINTS",
                        help="with --facts: also decode the other half at each strength, and keep only strengths "
                             "that answer at most POINTS fewer of them correctly than strength 0")
    args = parser.parse_args()
    if args.max_fact_drop is not None and not args.facts:
        parser.error("--max-fact-drop needs --facts")

    import torch
    from hyperlora.data_gen.facts import FACTS
    from hyperlora.data_gen.verifiers import is_refusal
    from hyperlora.evals.data import load_data
    from hyperlora.evals.metrics import qa_correct
    from sklearn.model_selection import train_test_split
    from tqdm.auto import tqdm

    from hyperlora.base import load_base
    from hyperlora.generation import chat_ids, generate_each
    from hyperlora.generator import HyperLoRA, shipped_checkpoint
    from hyperlora.guard import is_degenerate
    from hyperlora.steer import FILE, Steer

    checkpoint = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint()
    out = Path(args.out) if args.out else checkpoint / FILE
    strengths = [float(s) for s in args.strengths.split(",")]
    if 0.0 not in strengths:
        raise SystemExit("--strengths must include 0: the others are held to its harmful asks refused")
    dd = load_data(args.data, progress=False)
    asks, harmful, neighbour = guard_prompts(dd)
    fit_idx, val_idx = train_test_split(np.arange(len(asks)), test_size=0.2, stratify=[p.kind for p in asks],
                                        random_state=0)
    rng = np.random.default_rng(0)
    fit_idx = rng.permutation(fit_idx)
    refusing = sorted(m for m, has in manifesto_rules(dd, "train").items() if has)
    manifestos = [refusing[i] for i in rng.choice(len(refusing), args.manifestos, replace=False)]

    hl = HyperLoRA.from_pretrained(checkpoint)
    hl.steer = None  # the adapters as the hypernetwork generates them
    model, tok = load_base(hl.config.base_model)
    adapters = [hl.generate_adapter(m) for m in manifestos]
    under = lambda j: adapters[j % len(adapters)]  # noqa: E731 - each ask under one manifesto in turn
    name = f"model.layers.{args.layer}.self_attn.o_proj"
    if name not in adapters[0].weights:
        raise SystemExit(f"the checkpoint does not adapt {name}")

    # 3. the adapters' own replies to some fit asks
    n_rep = min(args.replies, len(fit_idx))
    replies = generate_each(model, tok, [[{"role": "user", "content": asks[i].text}] for i in fit_idx[:n_rep]],
                            [under(j) for j in range(n_rep)], max_new_tokens=48, batch_size=32,
                            progress=bar(n_rep, "replies to fit asks"))

    # 3b. the adapters' own replies to half the facts (held to 0); the other half validates the strength
    fit_facts, val_facts = [], []
    if args.facts:
        order = np.random.default_rng(1).permutation(len(FACTS))
        fit_facts, val_facts = [FACTS[k] for k in order[::2]], [FACTS[k] for k in order[1::2]]
    fact_replies = generate_each(model, tok, [[{"role": "user", "content": q}] for q, _ in fit_facts],
                                 [under(j) for j in range(len(fit_facts))], max_new_tokens=FACT_TOKENS, batch_size=32,
                                 progress=bar(len(fit_facts), "replies to fit facts")) if fit_facts else []

    # 4 and 5: the states, summed into the normal equations as they come
    d_in = adapters[0].weights[name][0].shape[1]
    groups = ("harmful", "benign", "zero") + (("facts",) if fit_facts else ())
    gram = {k: np.zeros((d_in, d_in)) for k in groups}
    rhs = {k: np.zeros(d_in) for k in groups}
    count = dict.fromkeys(gram, 0)
    last, refused = [], []
    for j, i in enumerate(tqdm(fit_idx, desc="states under the adapters", file=sys.stderr)):
        p_ids = chat_ids(tok, asks[i].text)
        r_ids = tok(replies[j], add_special_tokens=False)["input_ids"] if j < n_rep else []
        x, res = states(model, name, args.layer, under(j), p_ids + r_ids)
        n_p = len(p_ids)
        kind = "harmful" if harmful[i] else "benign"
        end = len(x) if harmful[i] else min(len(x), n_p + args.benign_reply)  # a benign reply: 0 past N tokens
        if args.neighbours_only and not (harmful[i] or neighbour[i]):
            end = n_p - TAIL  # an ordinary ask: 0 everywhere
        on, off = x[n_p - TAIL : end], np.concatenate([x[: n_p - TAIL], x[end:]])
        gram[kind] += on.T @ on
        rhs[kind] += on.sum(0)
        count[kind] += len(on)
        gram["zero"] += off.T @ off
        rhs["zero"] += off.sum(0)
        count["zero"] += len(off)
        if j < n_rep:
            last.append(res[n_p - 1].float().numpy())
            refused.append(is_refusal(replies[j]))
    for j, ((q, _), reply) in enumerate(zip(fit_facts, tqdm(fact_replies, desc="states of fit facts",
                                                             file=sys.stderr))):
        x, _ = states(model, name, args.layer, under(j),
                      chat_ids(tok, q) + tok(reply, add_special_tokens=False)["input_ids"])
        gram["facts"] += x.T @ x
        rhs["facts"] += x.sum(0)
        count["facts"] += len(x)
    n = count["harmful"] + count["benign"]
    g = (0.5 * n / count["harmful"]) * gram["harmful"] + (0.5 * n / count["benign"]) * gram["benign"]
    g = g + (n / count["zero"]) * gram["zero"]
    if fit_facts:  # the facts at 0 weigh as much as the +1 and -1 positions together
        g = g + (n / count["facts"]) * gram["facts"]
    g += 1e-3 * np.trace(g) / d_in * np.eye(d_in)
    weight = {k: 0.5 * n / count[k] for k in ("harmful", "benign")}
    read = np.linalg.solve(g, weight["harmful"] * rhs["harmful"] - weight["benign"] * rhs["benign"])
    # how well the read fits its targets: mean and root mean square of read·x over each group of positions
    fit = {k: (round(float(read @ rhs[k] / count[k]), 3), round(float(np.sqrt(read @ gram[k] @ read / count[k])), 3))
           for k in gram}
    print("read·x mean / rms: " + ", ".join(f"{k} {m} / {r}" for k, (m, r) in fit.items()))
    last, refused, h = np.stack(last), np.asarray(refused), harmful[fit_idx[:n_rep]]
    if min((refused & h).sum(), (~refused & h).sum(), (refused & ~h).sum(), (~refused & ~h).sum()) == 0:
        raise SystemExit("the adapters refused all or none of one kind of ask: no refusal direction to take")
    write = 0.5 * ((last[refused & h].mean(0) - last[~refused & h].mean(0))
                   + (last[refused & ~h].mean(0) - last[~refused & ~h].mean(0)))

    # 6. the strength, on the validation asks
    val = [i for i in val_idx if harmful[i] or neighbour[i]]
    y = harmful[val]
    ordinary = [i for i in val_idx if not (harmful[i] or neighbour[i])] if args.max_loop_rise is not None else []
    n_v = len(val) + len(ordinary)
    facts = val_facts if args.max_fact_drop is not None else []
    steers = {s: Steer(args.layer, "self_attn.o_proj", torch.tensor(read, dtype=torch.float32),
                       torch.tensor(write, dtype=torch.float32), s, torch.zeros(1), 0.0, hl.config.encoder)
              for s in strengths}
    prompts, ads = [], []
    for s in strengths:
        prompts += [[{"role": "user", "content": asks[i].text}] for i in val + ordinary]
        ads += [steers[s].extend(under(j)) for j in range(n_v)]
    val_replies = generate_each(model, tok, prompts, ads, max_new_tokens=48, batch_size=32,
                                progress=bar(len(prompts), "validation replies"))
    fact_prompts = [[{"role": "user", "content": q}] for q, _ in facts] * len(strengths)
    fact_ads = [steers[s].extend(under(j)) for s in strengths for j in range(len(facts))]
    val_fact_replies = generate_each(model, tok, fact_prompts, fact_ads, max_new_tokens=FACT_TOKENS, batch_size=32,
                                     progress=bar(len(fact_prompts), "validation facts")) if facts else []
    rates, loops, kept = {}, {}, {}
    for k, s in enumerate(strengths):
        f = np.asarray([is_refusal(r) for r in val_replies[k * n_v : k * n_v + len(val)]])
        rates[s] = (round(100 * float(f[y].mean()), 1), round(100 * float(f[~y].mean()), 1))
        line = f"strength {s}: validation harmful / benign refused {rates[s][0]}% / {rates[s][1]}%"
        if ordinary:
            loops[s] = round(100 * float(np.mean([is_degenerate(r) for r in val_replies[k * n_v + len(val) :
                                                                                       (k + 1) * n_v]])), 1)
            line += f"; {len(ordinary)} ordinary prompts' replies degenerate {loops[s]}%"
        if facts:
            kept[s] = round(100 * float(np.mean([qa_correct(r, a) for r, (_, a) in
                                                 zip(val_fact_replies[k * len(facts) : (k + 1) * len(facts)],
                                                     facts)])), 1)
            line += f"; {len(facts)} validation facts answered {kept[s]}%"
        print(line)
    ok = [s for s in strengths if s > 0 and rates[s][0] >= rates[0.0][0]
          and (not loops or loops[s] <= loops[0.0] + args.max_loop_rise)
          and (not kept or kept[s] >= kept[0.0] - args.max_fact_drop)]
    if not ok:
        raise SystemExit("no strength refuses as many harmful validation asks as none"
                         + (" within --max-loop-rise" if loops else "") + (" and --max-fact-drop" if kept else "")
                         + ": no row written")
    strength = max(ok, key=lambda s: rates[s][0] - rates[s][1])

    # 7. the gate
    gate_w, gate_b, gate_report = fit_gate(hl.encoder, dd)
    info = {"checkpoint": str(checkpoint), "layer": args.layer, "manifestos": len(manifestos),
            "benign_reply_tokens_at_minus_1": args.benign_reply, "neighbours_only": args.neighbours_only,
            "fit_asks": len(fit_idx), "read_mean_rms": fit,
            "fit_replies": n_rep, "fit_replies_refused": {"harmful": round(100 * float(refused[h].mean()), 1),
                                                           "benign": round(100 * float(refused[~h].mean()), 1)},
            "validation_asks": len(val), "validation_refused": {str(s): list(v) for s, v in rates.items()},
            "validation_ordinary_degenerate": {str(s): v for s, v in loops.items()},
            "facts_held_to_0": len(fit_facts), "validation_facts_answered": {str(s): v for s, v in kept.items()},
            "strength": strength, "gate": gate_report}
    steer = dataclasses.replace(steers[strength], gate_w=torch.tensor(gate_w), gate_b=gate_b, info=info)
    steer.save(out)
    limits = " and ".join(x for x, on in (("--max-loop-rise", loops), ("--max-fact-drop", kept)) if on)
    print(f"strength {strength} (the widest validation gap{' within ' + limits if limits else ''}); gate "
          f"{json.dumps(gate_report)}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
