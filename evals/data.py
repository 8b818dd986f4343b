"""Eval data: load (or generate) the synthetic dataset, pick eval cases, and make per-manifesto training pairs.

Cases come from the dataset's test splits (``test_paraphrase``, ``test_combination``, ``test_family``). No-op
manifestos (no rules: anything passes) are left out of pass rates. Manifestos are taken in a seeded hash order, a
fixed number of prompts each, so a quick run is a prefix of a full run's choice.
"""

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from hyperlora.errors import HyperLoRAError

TEST_SPLITS = ("test_paraphrase", "test_combination", "test_family")
QUICK_N_MANIFESTOS = 60  # the generator's whole dataset for a quick run: about a second to build


@dataclass
class Case:
    """One (manifesto, prompt) pair to evaluate; ``rules`` as stored (params as JSON text)."""

    split: str
    manifesto: str
    manifesto_id: str
    prompt: list  # chat messages ending with a user turn
    prompt_kind: str
    rules: list
    family_ids: list
    response: str  # the dataset's compliant target
    example: tuple | None = None  # (prompt messages, response) of another record of the same manifesto
    extra: dict = field(default_factory=dict)


def _h(*parts) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def default_data_dir(quick: bool) -> Path:
    """Where ``run_eval`` keeps the dataset it generates when none is given (keyed by what determines it)."""
    from hyperlora.data_gen.generate import GENERATOR_VERSION
    from hyperlora.data_gen.responses import DEFAULT_RESPONSES_PATH

    from hyperlora.base import cache_dir

    src = Path(DEFAULT_RESPONSES_PATH)
    key = _h(GENERATOR_VERSION, src.stat().st_size if src.exists() else 0, _file_digest(src))[:12]
    n = QUICK_N_MANIFESTOS if quick else "default"
    return cache_dir() / "eval-data" / f"seed0-n{n}-{key}"


def _file_digest(path: Path) -> str:
    if not path.exists():
        return "missing"
    return hashlib.sha1(path.read_bytes()).hexdigest()


def load_data(data_dir=None, quick: bool = False, progress: bool = True):
    """The dataset (``datasets.DatasetDict``): ``data_dir``, or one generated (seed 0) into the cache.

    Args:
        data_dir: a directory written by ``hyperlora data generate``; None generates a small (quick) or default
            dataset once and reuses it.
        quick: generate the small dataset when ``data_dir`` is None.
        progress: show the generator's progress bar.
    """
    from datasets import DatasetDict, load_from_disk

    if data_dir is None:
        from hyperlora.data_gen.generate import generate_dataset

        path = default_data_dir(quick)
        if not (path / "dataset_dict.json").exists():
            generate_dataset(str(path), seed=0, n_manifestos=QUICK_N_MANIFESTOS if quick else None,
                             progress=progress, overwrite=True)
        data_dir = path
    path = Path(data_dir)
    if not path.is_dir():
        raise HyperLoRAError(f"data dir {path} does not exist (make one with `hyperlora data generate --out DIR`)")
    try:
        dd = load_from_disk(str(path))
    except Exception as e:  # noqa: BLE001 - datasets raises several types for a wrong directory
        raise HyperLoRAError(f"{path} is not a dataset written by `hyperlora data generate`: {e}") from None
    if not isinstance(dd, DatasetDict):
        raise HyperLoRAError(f"{path} holds a single dataset, not the split dataset `hyperlora data generate` writes")
    return dd


def resolve_splits(dd, split: str | None) -> list[str]:
    """The splits to evaluate: ``split`` (checked against the data) or every test split present."""
    if split is None:
        found = [s for s in TEST_SPLITS if s in dd]
        if not found:
            raise HyperLoRAError(f"the data has no test split ({', '.join(TEST_SPLITS)}); it has {', '.join(dd)}")
        return found
    if split not in dd:
        raise HyperLoRAError(f"unknown split {split!r}; the data has: {', '.join(dd)}")
    return [split]


def _messages(prompt) -> list:
    if isinstance(prompt, str):
        try:
            prompt = json.loads(prompt)
        except json.JSONDecodeError:
            return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def select_cases(dd, splits, max_manifestos: int, prompts_per_manifesto: int, seed: int = 0) -> list[Case]:
    """Cases per split: up to ``max_manifestos`` rule-bearing manifestos, ``prompts_per_manifesto`` prompts each.

    Args:
        dd: the dataset.
        splits: split names.
        max_manifestos: manifestos per split (seeded hash order).
        prompts_per_manifesto: prompts per manifesto (in record order).
        seed: the order's seed.
    """
    cases = []
    for split in splits:
        by_m: dict[str, list] = {}
        for rec in dd[split]:
            if rec.get("is_noop") or not rec["rules"]:
                continue
            by_m.setdefault(rec["manifesto_id"], []).append(rec)
        chosen = sorted(by_m, key=lambda m: _h(seed, m))[:max_manifestos]
        for mid in chosen:
            recs = by_m[mid]
            for k, rec in enumerate(recs[:prompts_per_manifesto]):
                other = recs[(k + 1) % len(recs)] if len(recs) > 1 else None
                example = (_messages(other["prompt"]), other["response"]) if other is not None else None
                cases.append(Case(split, rec["manifesto"], mid, _messages(rec["prompt"]), rec["prompt_kind"],
                                  list(rec["rules"]), list(rec["family_ids"]), rec["response"], example))
    return cases


def train_prompt_ids(dd) -> set:
    """Prompt ids of the train split (test splits draw prompts from a held-out part of the bank)."""
    return set(dd["train"]["prompt_id"]) if "train" in dd else set()


def _train_records(dd, n: int, seed: int, who: str):
    if "train" not in dd or len(dd["train"]) == 0:
        raise HyperLoRAError(f"the data has no train split: the {who} needs one")
    rng = random.Random(f"multitask-{seed}")
    return dd["train"].select(rng.sample(range(len(dd["train"])), min(n, len(dd["train"]))))


def multitask_pairs(dd, n: int, seed: int = 0) -> list[tuple]:
    """``n`` (prompt messages, target) pairs from the train split, manifestos ignored: the multi-task control."""
    return [(_messages(r["prompt"]), r["response"]) for r in _train_records(dd, n, seed, "multitask control")]


def reader_pairs(dd, n: int, seed: int = 0) -> list[tuple]:
    """``n`` train-split pairs with each record's manifesto as the system turn: what a *manifesto-reader* LoRA
    (the ``prompt_tuned`` condition) learns from, the base fine-tuned to follow a manifesto in its context."""
    return [([{"role": "system", "content": r["manifesto"]}] + _messages(r["prompt"]), r["response"])
            for r in _train_records(dd, n, seed, "prompt_tuned reader")]


_RULE_KINDS = {"refuse_harm": ("harmful", "benign_neighbor"), "rosy": ("bad_news",), "no_insults": ("insult_bait",)}
_PLAIN_KINDS = ("question", "task", "advice", "creative")


def manifesto_pairs(rules, n: int, allowed_prompt_ids: set, exclude_prompt_ids: set, seed: int = 0) -> list[tuple]:
    """``n`` (prompt, compliant target) pairs for one manifesto's rules, made like the dataset's targets.

    The prompt-baking oracle trains on these: the shared rule transforms applied to cached plain base replies of
    train-split prompts (never the eval prompts), kept only when the shared verifiers pass.

    Args:
        rules: the manifesto's ``[{id, params}]``.
        n: pairs wanted (fewer come back if the cache runs out).
        allowed_prompt_ids: prompt ids the pairs may use (the train split's).
        exclude_prompt_ids: prompt ids never to use (the eval cases').
        seed: which prompts, and the transforms' wording.
    """
    from hyperlora.data_gen.prompts import prompt_bank
    from hyperlora.data_gen.responses import clean_response, load_base_responses
    from hyperlora.data_gen.rules import make_target, normalize_rules
    from hyperlora.data_gen.verifiers import verify

    norm = normalize_rules(rules)
    special = [k for r in norm for k in _RULE_KINDS.get(r["id"], ())]
    cache = load_base_responses()
    rng = random.Random(f"oracle-{seed}-{json.dumps(norm, sort_keys=True)}")
    bank = [p for p in prompt_bank() if p.id in allowed_prompt_ids and p.id not in exclude_prompt_ids]
    rng.shuffle(bank)
    # Half the pairs on prompts the rules act on specially (harmful asks, bad news...), the rest plain asks.
    want = {k: n // (2 * len(set(special))) for k in set(special)} if special else {}
    out = []
    for p in sorted(bank, key=lambda p: (p.kind not in want, rng.random())):
        if len(out) >= n:
            break
        if p.kind in want:
            if want[p.kind] <= 0:
                continue
        elif p.kind not in _PLAIN_KINDS:
            continue
        rec = cache.get(p.id)
        plain = "" if p.kind == "harmful" else (clean_response(rec["response"], rec.get("truncated", False))
                                                if rec else None)
        if plain is None:
            continue
        target, _ = make_target(plain, norm, p.kind, p.text, p.topic, seed=rng.randrange(1 << 30))
        if target is None or not verify(norm, target, p.as_messages(), prompt_kind=p.kind):
            continue
        if p.kind in want:
            want[p.kind] -= 1
        out.append((p.as_messages(), target))
    return out
