"""Build the manifesto -> behaviour dataset (``hyperlora data generate --out DIR [--seed S] [--n-manifestos N]``).

Steps over records, datatrove style: plan the splits -> sample manifestos -> pair each with prompts -> make the
compliant target (rule transforms over the cached base reply) -> filter by the verifiers (a record that fails is
dropped with its reason and written to ``dropped.jsonl``) -> write an HF ``DatasetDict`` with ``save_to_disk``
(to a temporary directory, renamed into place) plus ``summary.json``.

Splits, all checked by hash before anything is written:
- ``train``: train families, train phrasings, no held-out pair of families together.
- ``test_paraphrase``: like train, but every rule is said with a phrasing that never appears in train.
- ``test_combination``: train families and phrasings, but each manifesto contains a pair of families that never
  appears together in any train manifesto.
- ``test_family``: at least one family that never appears in train (``TEST_FAMILIES``).
Test splits also draw their prompts from a held-out 15% of the prompt bank.

Records: ``manifesto``, ``prompt`` (chat messages ending with a user turn), ``response``, ``rules`` (``[{id,
params}]``, params as JSON text: one Arrow type for every family), ``split``, ``base_response`` (the plain base
reply the target was made from; empty for a harmful ask without a cached reply), and metadata: ``source`` (``plain``
for no-op manifestos, ``transform`` for rule targets, ``teacher`` for teacher samples), ``generator_version``,
``date``, ``seed``, ``manifesto_id``, ``manifesto_style``, ``family_ids``, ``phrasing_ids``, ``prompt_id``,
``prompt_kind``, ``is_noop``, ``base_model``, ``verified``. Teacher mode adds ``teacher_topk_ids`` /
``teacher_topk_logprobs`` (see ``teacher.py``). ``minimal_pairs`` adds to each training manifesto a twin with one rule
changed in place (``pairs.py``), answering the same prompts; records then carry ``pair_of`` and ``pair_change``.

Default size and why: 1,600 manifestos x 4 prompts. The CPU recipe (issue 6) gets <= 90 min on 2 cores at ~6.5 s
per forward+backward of ~1k tokens, i.e. at most ~800 steps; a record is ~130 tokens (prompt ~25 + reply ~100),
so ~8 records per step and ~5-6k records per epoch-budget. 1,264 train manifestos x 4 = ~5k train records is one
pass of that budget with 4 prompts per manifesto per step; each test split gets 112 manifestos x 4 = 448 records,
enough for per-family pass rates with CIs. A GPU run can ask for more with ``n_manifestos``.
"""

import datetime
import hashlib
import json
import os
import random
import time
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

from hyperlora.io import atomic_dir

from . import manifestos as M
from .families import SLANG
from .pairs import twin
from .prompts import prompt_bank
from .responses import DEFAULT_RESPONSES_PATH, clean_response, load_base_responses
from .rules import compatible, families, get_family, make_target, normalize_rules
from .text import WORD_RE, has_contraction, has_word
from .verifiers import verify

GENERATOR_VERSION = "1.1.0"  # 1.1.0: records carry base_response
SPLITS = ("train", "test_paraphrase", "test_combination", "test_family")
TEST_FAMILIES = ("dialect_shakespeare", "signoff", "capital_words", "placeholders", "paragraphs")
DEFAULT_N_MANIFESTOS = 1600
PROMPTS_PER_MANIFESTO = 4
TEST_FRACTION = 0.07  # of manifestos, per test split
NOOP_FRACTION = 0.08  # of train manifestos
HELD_PHRASINGS = 2  # per family, for test_paraphrase
HELD_PAIR_FRACTION = 0.08  # of compatible train-family pairs, for test_combination
TEST_PROMPT_FRACTION = 0.15

# Prompt kinds for the free slots of a manifesto (harmful asks only come with the refusal rule: we never train
# compliance with them).
_KIND_WEIGHTS = {"question": 30, "task": 15, "advice": 12, "creative": 12, "benign_neighbor": 8, "bad_news": 6,
                 "insult_bait": 5, "greeting": 6, "multi_turn": 6}
_RULE_KINDS = {"refuse_harm": ["harmful", "harmful", "benign_neighbor"], "rosy": ["bad_news", "bad_news"],
               "no_insults": ["insult_bait", "insult_bait"]}


def _h(*parts) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


class _Plan:
    """Everything the splits hold out, drawn once from the seed."""

    def __init__(self, seed: int):
        rng = random.Random(f"plan-{seed}")
        fams = families()
        self.test_families = [f for f in TEST_FAMILIES if f in fams]
        self.train_families = [f for f in fams if f not in self.test_families]
        self.held_phrasings = {}
        for fid in self.train_families:
            idx = list(range(len(fams[fid].phrasings)))
            self.held_phrasings[fid] = sorted(rng.sample(idx, HELD_PHRASINGS))
        pairs = [p for p in combinations(self.train_families, 2) if compatible(p)]
        rng.shuffle(pairs)
        self.held_pairs = {frozenset(p) for p in pairs[: max(1, round(HELD_PAIR_FRACTION * len(pairs)))]}

    def train_phrasings(self, fid: str) -> list[int]:
        held = set(self.held_phrasings.get(fid, []))
        return [i for i in range(len(get_family(fid).phrasings)) if i not in held]

    def has_held_pair(self, ids) -> bool:
        return any(frozenset(p) in self.held_pairs for p in combinations(ids, 2))


def _sample_ids(rng, pool, k, ok) -> list[str] | None:
    for _ in range(200):
        ids = rng.sample(pool, k)
        if compatible(ids) and ok(ids):
            return ids
    return None


def _sample_manifesto(split: str, plan: _Plan, rng: random.Random, noop: bool):
    """``(text, style, [RuleChoice], [each rule's sentence])`` for one manifesto of ``split``."""
    style = rng.choice(M.STYLES)
    if noop:
        return M.render_manifesto([], style, rng), style, [], []
    k = rng.choices([1, 2, 3, 4], weights=[35, 35, 20, 10])[0]
    if split == "train":
        ids = _sample_ids(rng, plan.train_families, k, lambda ids: not plan.has_held_pair(ids))
    elif split == "test_paraphrase":
        k = min(k, 2)
        ids = _sample_ids(rng, plan.train_families, k, lambda ids: not plan.has_held_pair(ids))
    elif split == "test_combination":
        pair = sorted(rng.choice(sorted(plan.held_pairs, key=sorted)))
        others = [f for f in plan.train_families if f not in pair]
        extra = rng.choice([0, 0, 1])
        ids = None
        for _ in range(200):
            cand = pair + rng.sample(others, extra)
            if compatible(cand):
                ids = cand
                break
    else:  # test_family
        first = rng.choice(plan.test_families)
        ids = None
        for _ in range(200):
            cand = [first] + rng.sample(plan.train_families, min(k, 3) - 1)
            if compatible(cand):
                ids = cand
                break
    if ids is None:
        return None
    choices = []
    for fid in ids:
        fam = get_family(fid)
        params = fam.sample_params(rng)
        if split == "test_paraphrase":
            allowed = plan.held_phrasings[fid]
        elif fid in plan.test_families:
            allowed = list(range(len(fam.phrasings)))
        else:
            allowed = plan.train_phrasings(fid)
        choices.append(M.RuleChoice(fid, params, M.choose_phrasing(fid, allowed, style, rng)))
    if not _params_compatible(choices):
        return None
    text, lines = M.render_manifesto_lines(choices, style, rng)
    return text, style, choices, lines


def _params_compatible(choices) -> bool:
    """Cross-rule parameter clashes the family conflicts cannot see (a keyword that is also forbidden, ...)."""
    by = {c.family_id: c.params for c in choices}
    forbidden = {w.lower() for w in by.get("forbidden_words", {}).get("words", [])}
    strings = []
    for c in choices:
        if c.family_id == "forbidden_words":
            continue
        for v in c.params.values():
            if isinstance(v, str):
                strings.append(v.lower())
    if any(has_word(s, w) for w in forbidden for s in strings):
        return False
    # Verbatim phrases (greetings, start/end phrases) cannot be made formal without breaking their own rule.
    return "formal" not in by or not any(has_contraction(s) or any(has_word(s, w) for w in SLANG) for s in strings)


class _PromptPool:
    """Per-kind cyclic queues of prompts, so prompts are shared evenly across (contrasting) manifestos."""

    def __init__(self, prompts, rng):
        self.by_kind = defaultdict(list)
        for p in prompts:
            self.by_kind[p.kind].append(p)
        for kind in sorted(self.by_kind):
            rng.shuffle(self.by_kind[kind])
        self.pos = Counter()

    def next(self, kind):
        lst = self.by_kind.get(kind)
        if not lst:
            return None
        p = lst[self.pos[kind] % len(lst)]
        self.pos[kind] += 1
        return p


def _prompt_kinds(ids, rng, n) -> list[str]:
    kinds = []
    for fid in ids:
        kinds += _RULE_KINDS.get(fid, [])
    rng.shuffle(kinds)
    kinds = kinds[: n - 1] if len(kinds) >= n else kinds  # always keep at least one ordinary prompt
    while len(kinds) < n:
        kinds.append(rng.choices(list(_KIND_WEIGHTS), weights=list(_KIND_WEIGHTS.values()))[0])
    return kinds


def _split_sizes(n: int) -> dict[str, int]:
    n_test = max(1, round(TEST_FRACTION * n))
    return {"train": n - 3 * n_test, "test_paraphrase": n_test, "test_combination": n_test, "test_family": n_test}


def _token_counter():
    """The base tokenizer when it is already cached locally (fast), else a words-based estimate."""
    try:
        from hyperlora.base import DEFAULT_BASE, cache_dir

        path = cache_dir() / DEFAULT_BASE
        if (path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(path))
            return (lambda s: len(tok(s, add_special_tokens=False).input_ids)), "smollm2 tokenizer"
    except Exception:  # noqa: BLE001 - any failure just means we estimate
        pass
    return (lambda s: round(1.3 * len(s.split()))), "estimate (1.3 x words)"


def build_records(seed: int = 0, n_manifestos: int | None = None, progress: bool = True,
                  responses_path=DEFAULT_RESPONSES_PATH, date: str | None = None, minimal_pairs: bool = False):
    """Sample manifestos and targets in memory: ``(records, dropped, plan)``; see ``generate_dataset``."""
    from tqdm.auto import tqdm

    n = DEFAULT_N_MANIFESTOS if n_manifestos is None else n_manifestos
    date = date or datetime.date.today().isoformat()
    plan = _Plan(seed)
    cache = load_base_responses(responses_path)
    base_model = next(iter(cache.values()), {}).get("model", "unknown") if cache else "unknown"

    dropped = []
    usable = []
    for p in prompt_bank():
        rec = cache.get(p.id)
        if rec is None:
            if p.kind == "harmful":  # harmful asks only get refusals: their base reply is never used
                usable.append((p, ""))
            else:
                dropped.append({"stage": "prompt", "prompt_id": p.id, "reason": "no_base_response"})
            continue
        plain = clean_response(rec["response"], truncated=rec.get("truncated", False))
        if p.kind not in ("harmful", "greeting") and len(WORD_RE.findall(plain)) < 4:
            dropped.append({"stage": "prompt", "prompt_id": p.id, "reason": "junk_base_response", "response": plain})
            continue
        usable.append((p, plain))
    plain_of = {p.id: plain for p, plain in usable}

    rng = random.Random(f"prompts-{seed}")
    test_ids = set()
    by_kind = defaultdict(list)
    for p, _ in usable:
        by_kind[p.kind].append(p)
    for kind in sorted(by_kind):
        lst = sorted(by_kind[kind], key=lambda p: p.id)
        rng.shuffle(lst)
        test_ids |= {p.id for p in lst[: max(1, round(TEST_PROMPT_FRACTION * len(lst)))]}
    pools = {
        "train": _PromptPool([p for p, _ in usable if p.id not in test_ids], random.Random(f"pool-train-{seed}")),
        "test": _PromptPool([p for p, _ in usable if p.id in test_ids], random.Random(f"pool-test-{seed}")),
    }

    sizes = _split_sizes(n)
    records = []
    seen_manifestos = {}
    sampled_train = {}  # {manifesto id: (text, style, choices, lines)}, for minimal pairs
    bar = tqdm(total=n, desc="manifestos", disable=not progress)
    for split in SPLITS:
        srng = random.Random(f"{split}-{seed}")
        pool = pools["train" if split == "train" else "test"]
        n_noop = round(NOOP_FRACTION * sizes[split]) if split == "train" else 0
        made = 0
        attempts = 0
        partner_prompts = []
        while made < sizes[split]:
            attempts += 1
            if attempts > 50 * sizes[split] + 100:
                raise RuntimeError(f"could not sample enough {split} manifestos; lower n_manifestos")
            sampled = _sample_manifesto(split, plan, srng, noop=made < n_noop)
            if sampled is None:
                continue
            text, style, choices, lines = sampled
            mid = _h(text)
            if mid in seen_manifestos:  # identical text drawn twice: skip so splits stay disjoint by hash
                continue
            seen_manifestos[mid] = split
            if split == "train" and choices:
                sampled_train[mid] = (text, style, choices, lines)
            rules = normalize_rules([{"id": c.family_id, "params": c.params} for c in choices])
            ids = [c.family_id for c in choices]
            # Manifestos come in contrast pairs: the second of a pair answers the first one's ordinary prompts
            # (plus prompts its own value rules need), so the same prompt has different targets under different
            # manifestos and an adapter that ignores its manifesto cannot fit both.
            kinds = _prompt_kinds(ids, srng, PROMPTS_PER_MANIFESTO)
            n_rule_kinds = sum(k in ("harmful", "bad_news", "insult_bait") for k in kinds[: -1])
            partner = [q for q in partner_prompts if q.kind != "harmful"] if made % 2 == 1 else []
            slots = [("kind", k) for k in kinds[:n_rule_kinds]]
            slots += [("prompt", q) for q in partner[: PROMPTS_PER_MANIFESTO - n_rule_kinds]]
            slots += [("kind", k) for k in kinds[len(slots):]]
            used = []
            for how, what in slots:
                for _try in range(4):
                    if how == "prompt" and _try == 0:
                        p = what
                    else:
                        p = pool.next(what if how == "kind" else what.kind)
                    if p is None:
                        break
                    if (p.kind == "harmful" and "refuse_harm" not in ids) or p in used:
                        continue
                    plain = plain_of[p.id]
                    if rules:
                        response, reason = make_target(plain, rules, p.kind, p.text, p.topic,
                                                       seed=int(_h(seed, mid, p.id), 16))
                    else:
                        response, reason = plain, None
                    if response is None:
                        dropped.append({"stage": "target", "split": split, "manifesto_id": mid, "prompt_id": p.id,
                                        "rules": ids, "reason": reason})
                        continue
                    records.append({
                        "manifesto": text,
                        "prompt": p.as_messages(),
                        "response": response,
                        "base_response": plain,
                        "rules": [{"id": r["id"], "params": json.dumps(r["params"], sort_keys=True)} for r in rules],
                        "split": split,
                        "source": "transform" if rules else "plain",
                        "generator_version": GENERATOR_VERSION,
                        "date": date,
                        "seed": seed,
                        "manifesto_id": mid,
                        "manifesto_style": style,
                        "family_ids": ids,
                        "phrasing_ids": [f"{c.family_id}/{c.phrasing}" for c in choices],
                        "prompt_id": p.id,
                        "prompt_kind": p.kind,
                        "is_noop": not rules,
                        "base_model": base_model,
                    })
                    used.append(p)
                    break
            partner_prompts = used if made % 2 == 0 else []
            made += 1
            bar.update(1)
    bar.close()
    if minimal_pairs:
        prompt_of = {p.id: p for p, _ in usable}
        records += _twins(records, sampled_train, plan, prompt_of, seed, seen_manifestos, dropped)
    return records, dropped, plan


def _twins(records, sampled, plan, prompt_of, seed, seen, dropped) -> list[dict]:
    """Each training manifesto's minimal-pair twin (``pairs.twin``), answering the same prompts; every record then
    names its pair (``pair_of``, the other manifesto's id, and ``pair_change``, what changed; both "" if none).

    Drawn after every split, each twin from a random source of its own, so the dataset without twins is unchanged.
    """
    by_mid = defaultdict(list)
    for r in records:
        r["pair_of"], r["pair_change"] = "", ""
        by_mid[r["manifesto_id"]].append(r)
    out = []
    for mid, (text, style, choices, lines) in sampled.items():
        made = twin(choices, lines, text, style, plan, random.Random(f"twin-{seed}-{mid}"), _params_compatible)
        if made is None:
            continue
        text2, choices2, change = made
        mid2 = _h(text2)
        if mid2 in seen:
            continue
        rules = normalize_rules([{"id": c.family_id, "params": c.params} for c in choices2])
        ids = [c.family_id for c in choices2]
        twins = []
        for r in by_mid[mid]:
            p = prompt_of[r["prompt_id"]]
            if p.kind == "harmful" and "refuse_harm" not in ids:  # never train compliance with a harmful ask
                continue
            if rules:
                # The manifesto's own seed, so the rules both keep make the same choices (the same casual opener,
                # the same cowboy greeting): the pair's targets differ only where the changed rule acts.
                response, reason = make_target(r["base_response"], rules, p.kind, p.text, p.topic,
                                               seed=int(_h(seed, mid, p.id), 16))
            else:
                response, reason = r["base_response"], None
            if response is None:
                dropped.append({"stage": "twin", "split": "train", "manifesto_id": mid2, "prompt_id": p.id,
                                "rules": ids, "reason": reason})
                continue
            twins.append({
                **r,
                "manifesto": text2,
                "response": response,
                "rules": [{"id": x["id"], "params": json.dumps(x["params"], sort_keys=True)} for x in rules],
                "source": "transform" if rules else "plain",
                "manifesto_id": mid2,
                "family_ids": ids,
                "phrasing_ids": [f"{c.family_id}/{c.phrasing}" for c in choices2],
                "is_noop": not rules,
                "pair_of": mid,
                "pair_change": change,
            })
        if twins:
            seen[mid2] = "train"
            for r in by_mid[mid]:
                r["pair_of"], r["pair_change"] = mid2, change
            out += twins
    return out


def check_splits(records, plan: _Plan) -> dict[str, bool]:
    """The split guarantees, checked on the records themselves (by hash and by id)."""
    by_split = defaultdict(list)
    for r in records:
        by_split[r["split"]].append(r)
    mids = {s: {r["manifesto_id"] for r in rs} for s, rs in by_split.items()}
    texts = {s: {_h(r["manifesto"]) for r in rs} for s, rs in by_split.items()}
    train = by_split.get("train", [])
    train_phr = {x for r in train for x in r["phrasing_ids"]}
    train_fams = {f for r in train for f in r["family_ids"]}
    train_pairs = {frozenset(p) for r in train for p in combinations(r["family_ids"], 2)}
    train_sets = {frozenset(r["family_ids"]) for r in train}
    test_prompts = {r["prompt_id"] for s in SPLITS[1:] for r in by_split.get(s, [])}
    return {
        "manifestos_disjoint": all(
            not (mids[a] & mids[b]) and not (texts[a] & texts[b])
            for a, b in combinations(sorted(mids), 2)
        ),
        "paraphrase_phrasings_unseen": all(
            x not in train_phr for r in by_split.get("test_paraphrase", []) for x in r["phrasing_ids"]
        ),
        "combination_pairs_unseen": all(
            any(frozenset(p) not in train_pairs for p in combinations(r["family_ids"], 2))
            and frozenset(r["family_ids"]) not in train_sets
            for r in by_split.get("test_combination", [])
        ),
        "families_unseen": all(
            any(f not in train_fams for f in r["family_ids"]) for r in by_split.get("test_family", [])
        ) and not (train_fams & set(plan.test_families)),
        "test_prompts_unseen": not any(r["prompt_id"] in test_prompts for r in train),
    }


def generate_dataset(out_dir: str, seed: int = 0, n_manifestos: int | None = None, progress: bool = True,
                     overwrite: bool = False, teacher=None, teacher_n: int = 4, teacher_top_k: int = 20,
                     teacher_max_new_tokens: int = 96, minimal_pairs: bool = False) -> dict:
    """Generate the dataset and write it to ``out_dir`` (HF ``DatasetDict.save_to_disk`` + ``summary.json``).

    Args:
        out_dir: target directory; must not exist or be empty unless ``overwrite``.
        seed: everything random derives from it: same seed, same dataset (except the ``date`` field).
        n_manifestos: total manifestos over all splits (default ``DEFAULT_N_MANIFESTOS``); 4 prompts each.
        progress: show a tqdm bar.
        overwrite: replace an existing non-empty ``out_dir``.
        teacher: optional teacher mode for capable bases: a base name / HF dir, or a ``(model, tokenizer)`` pair.
            The teacher, given the manifesto as system prompt, samples ``teacher_n`` replies per record; the best
            one that passes the verifiers replaces the transform target (``source="teacher"``) and top-k teacher
            log-probs of the kept reply are stored for KL distillation. Slow on CPU; meant for GPUs.
        teacher_n: samples per record (best-of-n).
        teacher_top_k: log-probs kept per position.
        teacher_max_new_tokens: sample length.
        minimal_pairs: give each training manifesto a twin with one rule changed, answering the same prompts
            (``pairs.py``); records then carry ``pair_of`` and ``pair_change``.

    Returns:
        the summary dict (also written to ``out_dir/summary.json``).
    """
    start = time.time()
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise ValueError("--out must be a directory path")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    if n_manifestos is not None and (isinstance(n_manifestos, bool) or not isinstance(n_manifestos, int)
                                     or n_manifestos < 8):
        raise ValueError(f"--n-manifestos must be an integer >= 8 (2 per split at least), got {n_manifestos!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out} already exists and is not empty; remove it, choose another directory, "
                         "or replace it (--force, overwrite=True)")

    records, dropped, plan = build_records(seed, n_manifestos, progress, minimal_pairs=minimal_pairs)
    checks = check_splits(records, plan)
    if not all(checks.values()):
        raise RuntimeError(f"split checks failed: {[k for k, v in checks.items() if not v]}")

    if teacher is not None:
        from .teacher import annotate_with_teacher

        records = annotate_with_teacher(records, teacher, n=teacher_n, top_k=teacher_top_k,
                                        max_new_tokens=teacher_max_new_tokens, seed=seed, progress=progress)

    passed = 0
    for r in records:
        r["verified"] = verify(r["rules"], r["response"], r["prompt"], prompt_kind=r["prompt_kind"])
        passed += r["verified"]

    count_tokens, token_method = _token_counter()
    tokens = Counter()
    for r in records:
        tokens[r["split"]] += count_tokens(" ".join(m["content"] for m in r["prompt"])) + count_tokens(r["response"])

    # Validated above: out is absent, empty, or to be overwritten. Written whole, then renamed into place.
    with atomic_dir(out, force=True) as tmp:
        _write(records, dropped, tmp)
        summary = _summary(records, dropped, plan, checks, seed, n_manifestos, passed, tokens, token_method,
                           out, start)
        summary["bytes"] = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def _features(with_teacher: bool, with_pairs: bool = False):
    from datasets import Features, Value

    feats = {
        "manifesto": Value("string"),
        "prompt": [{"role": Value("string"), "content": Value("string")}],
        "response": Value("string"),
        "base_response": Value("string"),
        "rules": [{"id": Value("string"), "params": Value("string")}],
        "split": Value("string"),
        "source": Value("string"),
        "generator_version": Value("string"),
        "date": Value("string"),
        "seed": Value("int64"),
        "manifesto_id": Value("string"),
        "manifesto_style": Value("string"),
        "family_ids": [Value("string")],
        "phrasing_ids": [Value("string")],
        "prompt_id": Value("string"),
        "prompt_kind": Value("string"),
        "is_noop": Value("bool"),
        "base_model": Value("string"),
        "verified": Value("bool"),
    }
    if with_pairs:
        feats["pair_of"] = Value("string")
        feats["pair_change"] = Value("string")
    if with_teacher:
        feats["teacher_topk_ids"] = [[Value("int32")]]
        feats["teacher_topk_logprobs"] = [[Value("float32")]]
        feats["teacher_passed"] = Value("bool")
    return Features(feats)


def _write(records, dropped, path: Path):
    import datasets
    from datasets import Dataset, DatasetDict

    datasets.disable_progress_bars()  # our own bar covers the run; saving takes well under a second
    with_teacher = any("teacher_topk_ids" in r for r in records)
    feats = _features(with_teacher, with_pairs=any("pair_of" in r for r in records))
    dd = DatasetDict({
        s: Dataset.from_list([r for r in records if r["split"] == s], features=feats) for s in SPLITS
    })
    dd.save_to_disk(str(path))
    with open(path / "dropped.jsonl", "w") as f:
        for d in dropped:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def _summary(records, dropped, plan, checks, seed, n_manifestos, passed, tokens, token_method, out, start):
    per_split = Counter(r["split"] for r in records)
    manif = {s: len({r["manifesto_id"] for r in records if r["split"] == s}) for s in SPLITS}
    fam_counts = Counter(f for r in records for f in r["family_ids"])
    # Both manifestos of a pair carry its change, so each kind is counted twice over the paired manifestos.
    paired = {r["manifesto_id"]: r["pair_change"].split(":")[0] for r in records if r.get("pair_of")}
    pairs = {"minimal_pairs": {k: n // 2 for k, n in sorted(Counter(paired.values()).items())}} \
        if any("pair_of" in r for r in records) else {}
    return {
        **pairs,
        "out_dir": str(out),
        "seed": seed,
        "n_manifestos": DEFAULT_N_MANIFESTOS if n_manifestos is None else n_manifestos,
        "generator_version": GENERATOR_VERSION,
        "records": {s: per_split.get(s, 0) for s in SPLITS},
        "manifestos": manif,
        "noop_records": sum(r["is_noop"] for r in records),
        "families": {"total": len(families()), "train": len(plan.train_families),
                     "test_family": list(plan.test_families)},
        "family_records": dict(sorted(fam_counts.items())),
        "prompt_kinds": dict(sorted(Counter(r["prompt_kind"] for r in records).items())),
        "distinct_prompts": len({r["prompt_id"] for r in records}),
        "tokens": {s: tokens.get(s, 0) for s in SPLITS},
        "token_count_method": token_method,
        "verified": {"passed": passed, "total": len(records)},
        "dropped": dict(sorted(Counter(d["reason"] for d in dropped).items())),
        "checks": checks,
        "held_out": {"pairs": sorted(sorted(p) for p in plan.held_pairs), "phrasings": plan.held_phrasings},
        "time_s": round(time.time() - start, 1),
    }


def format_summary(summary: dict) -> str:
    """A short human-readable report of ``generate_dataset``'s summary (what the CLI prints)."""
    lines = [f"dataset -> {summary['out_dir']}  (seed {summary['seed']}, {summary['n_manifestos']} manifestos, "
             f"generator {summary['generator_version']})"]
    lines.append(f"{'split':<18}{'manifestos':>11}{'records':>9}{'tokens':>10}")
    for s in SPLITS:
        lines.append(f"{s:<18}{summary['manifestos'][s]:>11}{summary['records'][s]:>9}{summary['tokens'][s]:>10}")
    v = summary["verified"]
    if "minimal_pairs" in summary:
        kinds = ", ".join(f"{n} {k}" for k, n in summary["minimal_pairs"].items())
        lines.append(f"minimal pairs (one rule changed): {sum(summary['minimal_pairs'].values())} ({kinds})")
    lines.append(f"targets passing their verifiers: {v['passed']}/{v['total']}")
    fams = summary["families"]
    lines.append(f"families: {fams['total']} ({fams['train']} in train; held out: {', '.join(fams['test_family'])})")
    lines.append(f"distinct prompts: {summary['distinct_prompts']}; no-op records: {summary['noop_records']}")
    if summary["dropped"]:
        lines.append("dropped: " + ", ".join(f"{k}={v}" for k, v in summary["dropped"].items()))
    lines.append("split checks: " + ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in summary["checks"].items()))
    mb = summary.get("bytes", 0) / 1e6
    lines.append(f"size {mb:.1f} MB, {summary['time_s']} s")
    return "\n".join(lines)


def load_dataset_dir(path: str):
    """Load a generated dataset (``datasets.DatasetDict``) from ``path``."""
    from datasets import load_from_disk

    return load_from_disk(str(path))
