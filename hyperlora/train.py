"""The training recipe for the hypernetwork: setup -> loop -> save. One readable file, no Trainer subclass.

    hyperlora train --config hyperlora/configs/cpu.yaml [key=value ...]

Each step takes a few manifestos and a few of their (prompt, compliant response) records, generates one adapter
per manifesto, runs every sequence through the base model with its own manifesto's adapter
(``per_example_lora``) and minimises:

    loss = CE(compliant response)                       on records whose manifesto has rules (the tokens the
                                                        rules changed weighted edit_weight times, the first
                                                        tokens of a refusal decision decision_weight times)
         + retain_weight · KL(base ‖ adapted)           on no-op manifestos (their target is the plain reply)
         + l2_weight · mean(B²)                         on the generated weights
         + dw_weight · mean ‖ΔW‖²_F / ‖W‖²_F             the adapter's energy beside each frozen weight (dw_modules)
         + contrast_weight · max(0, contrast_margin − (CE_other − CE_own))   per sequence with rules
         + copy_weight · −log(copy attention on each rule word)   with the copy path, for rules that name a word

The contrast term is what makes an adapter specific: CE_other is the same response under the adapter of another
manifesto in the batch. Without it, most of what the hypernetwork learns is the responses' shared style, which
any manifesto's adapter carries just as well (``scripts/manifesto_gap.py`` measures this).

Nothing below the lowest adapted layer depends on the manifesto, so with ``cache_activations`` the hidden state
entering that layer is computed once per record and training runs only the layers above it. The batch at step s
is a pure function of (seed, s), so a run killed at any point resumes from its last save with the same data order.

Data-parallel runs (``accelerate launch --multi_gpu --num_processes P``; DDP) are the same optimisation as one
process: ``manifestos_per_step`` is the global batch, each process takes its contiguous share of it, every loss term
is a mean over the global batch, and the log shows those global means (the main process writes it).
"""

import dataclasses
import hashlib
import json
import math
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import safetensors.torch
import torch
import torch.nn.functional as F

from .adapter import Adapter
from .base import load_base, lower_hidden, only_layers
from .checkpoint import load_checkpoint, save_checkpoint
from .config import HyperNetConfig, load_config
from .encoder import BaseTokens, load_encoder
from .errors import HyperLoRAError
from .generation import chat_ids
from .generator import HyperLoRA, targets_of
from .hypernet import HyperNet
from .io import atomic_dir
from .lora import per_example_lora


@dataclass
class TrainConfig:
    """One training run. Every field can be overridden on the command line as ``key=value``."""

    data: str = "data/default"  # dataset dir written by `hyperlora data generate`
    out: str = "runs/cpu"
    hypernet: HyperNetConfig = field(default_factory=HyperNetConfig)
    steps: int = 1000
    manifestos_per_step: int = 4  # the global batch: data-parallel processes split it evenly
    prompts_per_manifesto: int = 2
    max_tokens: int = 192  # per sequence, chat template + prompt + response
    lr: float = 3e-4
    # The heads map a d_model-wide latent to whole rows of A and B, so one Adam step moves a generated weight about
    # d_model times further than it moves a plain LoRA weight: they need a much smaller step than the trunk.
    head_lr_scale: float = 1.0
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    l2_weight: float = 1e-3
    # mean(B²) alone does not bound ΔW = B·A (A may grow while B shrinks), and at 1e-3 it was ~1e-6 of the loss.
    # This term penalises what the base model feels: ‖s·B·A‖²_F over ‖W‖²_F per adapted module, averaged. The
    # shipped adapters carry 2-3% of their weights' energy (up to 5% in the top layers' q/k projections), and any
    # adapter of that size, random directions included, makes ~11% of QA replies loop (README). Logged as "dw"
    # whatever its weight; 0 leaves it out of the loss.
    dw_weight: float = 0.0
    # The module types the energy term covers; empty: all of them. The degenerate replies live in o_proj (with its
    # ΔW zeroed at inference they fall from 17% to 1.2% of QA replies, and no held-out case is lost: README), so
    # ``dw_modules=[o_proj]`` asks the other modules to carry the manifesto instead of shrinking every one.
    dw_modules: list = field(default_factory=list)
    retain_weight: float = 1.0
    # Hinge on CE(response | another manifesto's adapter) − CE(response | its own), per sequence, in nats per
    # token; costs one more forward and backward of the adapted layers. 0 turns it off.
    contrast_weight: float = 0.0
    contrast_margin: float = 0.3
    # Copy path only: for every word or phrase a rule asks the reply to contain (a keyword, a name, a closing
    # line), some rank row of every copying layer is asked to read it. Without this the copy gates start at zero,
    # so the copy attention gets no gradient, and what it reads (a blur of the whole manifesto) gives the gates none
    # worth following: they stay near zero (README, "Where the pass rate is lost"). 0 turns it off.
    copy_weight: float = 0.0
    # The refusal rule is in 7% of the training manifestos, so its few asks (151 harmful, 88 benign neighbours)
    # are a small share of the gradient. refusal_weight draws manifestos with it that many times as often;
    # pair_refusal_asks gives each such draw a harmful ask and a benign neighbour together, so one adapter is asked,
    # in one step, both to refuse and to help; refusal_asks_per_draw that many of each (such a draw then takes
    # 2 × that many rows, more than prompts_per_manifesto if need be).
    refusal_weight: float = 1.0
    pair_refusal_asks: bool = False
    refusal_asks_per_draw: int = 1
    # Pairs of rule families that cannot hold together, e.g. [[lowercase, uppercase], [max_words, min_words]]. The
    # shipped hypernetwork gives such opposites the same weights (scripts/rule_contrast.py: cosine 1.00 for lower
    # and upper case), because nothing asks their adapters to differ: the contrast term's partner is another
    # manifesto of the batch, which almost never holds the opposite rule. With pairs given, each even-placed
    # manifesto of a step that holds one side is followed by a manifesto holding the other, so the contrast term
    # (every sequence scored under the next manifesto's adapter) asks for the difference. Empty: batches as before.
    opposite_rules: list = field(default_factory=list)
    # Minimal pairs (``hyperlora data generate --minimal-pairs``): each training manifesto has a twin with one rule
    # changed that answers the same prompts. With this on, a manifesto drawn at an even place of a step is followed
    # by its twin, so one step holds both targets of a prompt, differing only where that rule acts, and the contrast
    # term (if on) scores each reply under the twin's adapter: an adapter that does not read the changed rule's
    # words or direction cannot fit both.
    minimal_pairs: bool = False
    # CE weight of the response tokens the rules put there: those of the target that a token diff does not find, in
    # order, in the plain base reply it was made from (the record's base_response). The rest of a target is the
    # base's own greedy reply, the same under every manifesto, so in a plain mean the tokens that carry a rule (a
    # name, a keyword, a closing line) share the gradient with many that say nothing about the manifesto.
    # 1 weights every token alike.
    edit_weight: float = 1.0
    # With minimal_pairs: CE weight of the reply tokens that differ from the twin's reply to the same prompt (a
    # token diff, as for edit_weight): the few tokens that say the changed rule's words or direction. 1: no extra.
    pair_weight: float = 1.0
    # With minimal_pairs and the contrast term: a reply scored under its own twin's adapter is hinged only on the
    # tokens that differ from the twin's reply. Over the whole reply the hinge (0.3 nats a token) cannot be met by
    # the few tokens a changed phrase touches, so it pushes the twin's adapter to do worse on the words both share.
    pair_hinge_tokens: bool = False
    # CE weight of the first ``decision_tokens`` reply tokens of a harmful ask or a benign neighbour under a manifesto
    # with the refusal rule: the tokens where the reply refuses or helps. In a plain mean they are a few of a
    # hundred, and three continuations with more such asks moved the share refused of both kinds together
    # (README, "The adapter's refusals move along one line") though the base's own hidden state entering layer 22
    # tells the held-out asks apart (scripts/refusal_probe.py). 1: no extra.
    decision_weight: float = 1.0
    decision_tokens: int = 8
    # Against refusing a benign neighbour, on many at once: each step, under the first manifesto of the batch with
    # the refusal rule, ``decision_asks`` benign neighbours drawn from every manifesto's records, each followed by
    # each of that manifesto's own refusal openings (the first ``decision_ul_tokens`` tokens where its refusal of a
    # harmful ask parts from its reply to a neighbour), and the unlikelihood −log(1 − p(any of them)), which pushes
    # only where the adapter would refuse. Every opening, not one: penalised one at a time, the adapter refuses in
    # other words (a first version, with CE on the openings of harmful asks too, refused 80% of the hand-written
    # neighbours). Three tokens ("I must decline", "Sorry, but I"): over eight, p(opening) stayed near 1e-5 and the
    # term did nothing. Short rows (prompt + opening); the lower layers run afresh (no grad). 0 turns it off.
    decision_ul_weight: float = 0.0
    decision_asks: int = 16
    decision_ul_tokens: int = 3
    # Distillation from a manifesto reader (issue 21, direction 2): ``teacher`` is a PEFT LoRA directory for the base
    # (scripts/train_reader.py: the base fine-tuned to follow a manifesto given as its system turn). Each step the
    # teacher reads every record with its manifesto as the system turn, and the generated adapter, without it, is
    # asked to match the teacher's top-k next-token distribution at every reply token: a full distribution per
    # token beside CE's one sampled token. Computed online (one more no-grad pass of the whole base a step): a
    # record is drawn about once in a pilot, so a cache would cost the same. 0 turns it off.
    teacher: str = ""
    distill_weight: float = 0.0
    distill_top_k: int = 20
    # bf16 autocast around the base model's forward and backward (the hypernetwork and its optimizer stay fp32).
    # "auto": on a GPU only. On a CPU with AVX512-BF16 it also pays: an 8-layer step took 2.9 s in fp32, ~2 s in bf16.
    mixed_precision: str = "auto"
    cache_activations: bool = True  # precompute the hidden state entering the lowest adapted layer
    save_every: int = 100
    log_every: int = 10
    seed: int = 0
    # Start the hypernetwork from this checkpoint's weights (its hypernet settings must be the run's), not from
    # scratch: a recipe that continues the shipped checkpoint with another loss. The optimizer starts afresh.
    init: str = ""
    # Train only the hypernetwork parameters whose names match this regular expression from their start (a plain
    # prefix is one); the rest stay as ``init`` left them. "copy_": a copy block of its own (hypernet.copy_rank)
    # learned on top of a frozen checkpoint, whose style rows are then exactly the checkpoint's. ".*o_proj": only
    # what writes the attention output's ΔW. "" trains everything.
    train_only: str = ""
    # With hypernet.probe_rank: the file of fixed directions the probe rows read (scripts/refusal_probe.py
    # --directions). Needed unless ``init`` or a resumed run already carries them.
    probe_directions: str = ""
    max_records: int = 0  # use at most this many training records (0 = all); for quick runs and tests
    ship: str = ""  # at the end, also write a bf16 copy of the checkpoint here (e.g. the packaged default)

    def __post_init__(self):
        if isinstance(self.hypernet, dict):
            self.hypernet = HyperNetConfig.from_dict(self.hypernet)
        for name in ("steps", "manifestos_per_step", "prompts_per_manifesto", "max_tokens", "save_every"):
            if getattr(self, name) < 1:
                raise HyperLoRAError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise HyperLoRAError(f"lr must be positive, got {self.lr}")
        if self.refusal_asks_per_draw < 1 or (self.refusal_asks_per_draw > 1 and not self.pair_refusal_asks):
            raise HyperLoRAError(f"refusal_asks_per_draw must be at least 1 and needs pair_refusal_asks=true, got "
                                 f"{self.refusal_asks_per_draw}")
        if self.refusal_weight <= 0:
            raise HyperLoRAError(f"refusal_weight must be positive, got {self.refusal_weight}")
        if self.decision_ul_weight < 0 or self.decision_asks < 2 or self.decision_ul_tokens < 1:
            raise HyperLoRAError(f"decision_ul_weight must be non-negative, decision_asks at least 2 and "
                                 f"decision_ul_tokens at least 1, got {self.decision_ul_weight}, "
                                 f"{self.decision_asks} and {self.decision_ul_tokens}")
        if self.decision_weight <= 0 or self.decision_tokens < 1:
            raise HyperLoRAError(f"decision_weight must be positive and decision_tokens at least 1, got "
                                 f"{self.decision_weight} and {self.decision_tokens}")
        if self.edit_weight <= 0:
            raise HyperLoRAError(f"edit_weight must be positive, got {self.edit_weight}")
        if self.pair_weight <= 0 or (self.pair_weight != 1 and not self.minimal_pairs):
            raise HyperLoRAError(f"pair_weight must be positive and needs minimal_pairs=true, got {self.pair_weight}")
        if self.pair_hinge_tokens and not (self.minimal_pairs and self.contrast_weight):
            raise HyperLoRAError("pair_hinge_tokens needs minimal_pairs=true and the contrast term (contrast_weight)")
        if self.distill_weight and not self.teacher:
            raise HyperLoRAError("distill_weight needs teacher=DIR (a reader LoRA: scripts/train_reader.py)")
        if self.distill_weight < 0 or self.distill_top_k < 1:
            raise HyperLoRAError("distill_weight must be non-negative and distill_top_k at least 1")
        if self.mixed_precision not in ("auto", "bf16", "no"):
            raise HyperLoRAError(f"mixed_precision must be auto, bf16 or no, got {self.mixed_precision!r}")
        try:
            re.compile(self.train_only)
        except re.error as e:
            raise HyperLoRAError(f"train_only={self.train_only!r} is not a regular expression: {e}") from None
        if self.opposite_rules and not self.contrast_weight:
            raise HyperLoRAError("opposite_rules works through the contrast term: set contrast_weight too")
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(f, str) for f in p)
                   for p in self.opposite_rules):
            raise HyperLoRAError(f"opposite_rules must be pairs of rule ids, e.g. [[lowercase, uppercase]], got "
                                 f"{self.opposite_rules!r}")
        unknown = sorted(set(self.dw_modules) - set(self.hypernet.module_types))
        if unknown:
            raise HyperLoRAError(f"dw_modules: {', '.join(unknown)} not among the adapted module types "
                                 f"({', '.join(self.hypernet.module_types)})")
        if self.copy_weight and not self.hypernet.copy_path:
            raise HyperLoRAError("copy_weight needs hypernet.copy_path=true")
        if self.probe_directions and not self.hypernet.probe_rank:
            raise HyperLoRAError("probe_directions needs probe rows to read them: set hypernet.probe_rank too")


# ----------------------------------------------------------------------------------------------------- data


def load_records(cfg: TrainConfig) -> list[dict]:
    """The training split as a list of records (manifesto, prompt, response, rules)."""
    import datasets

    path = Path(cfg.data)
    if not path.exists():
        raise HyperLoRAError(f"dataset not found: {path} (make one with `hyperlora data generate --out {path}`)")
    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise HyperLoRAError(f"{path} is not a saved datasets dataset: {e}") from e
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise HyperLoRAError(f"{path} has no train split (splits: {list(ds)})")
        ds = ds["train"]
    else:
        ds = ds.filter(lambda r: r["split"] == "train")
    records = [dict(r) for r in ds]
    if cfg.max_records:
        records = records[: cfg.max_records]
    if not records:
        raise HyperLoRAError(f"{path} has no training records")
    return records


def prompt_of(record: dict):
    """The record's prompt: a string, or the message list of a multi-turn chat (stored as JSON text)."""
    prompt = record["prompt"]
    if isinstance(prompt, str) and prompt.startswith("[{"):
        prompt = json.loads(prompt)
    return prompt


def tokenize(tokenizer, record: dict, max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (T,), target mask (T,)): the chat up to the assistant turn, then the response and its end token.

    No system prompt: the adapter has to do what the system prompt would, so it is trained as it is used.
    """
    context = chat_ids(tokenizer, prompt_of(record))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    end = end if isinstance(end, int) and end != tokenizer.unk_token_id else tokenizer.eos_token_id
    reply = tokenizer(record["response"], add_special_tokens=False)["input_ids"] + [end]
    ids = (context + reply)[:max_tokens]
    target = ([False] * len(context) + [True] * len(reply))[:max_tokens]
    return torch.tensor(ids), torch.tensor(target)


def teacher_ids(tokenizer, record: dict, ids: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The record as the teacher reads it: the chat with its manifesto as the system turn, then the same reply
    tokens the student is trained on (``ids[target]``). Returns (ids (T',), where the reply starts)."""
    context = chat_ids(tokenizer, prompt_of(record), system=record["manifesto"])
    return torch.tensor(context + ids[target].tolist()), len(context)


@torch.no_grad()
def teacher_topk(model, factors: dict, scaling: float, seqs: list[tuple[torch.Tensor, int]], pad: int, k: int,
                 device, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's top-k next-token log-probs at every reply token of ``seqs`` (the reply's positions, row by row,
    in the order a boolean mask over the student's batch gives them): (log-probs (n, k), token ids (n, k))."""
    ids = pad_stack([s for s, _ in seqs], value=pad).to(device)  # (N, T') right-padded: causal attention
    at = torch.zeros_like(ids, dtype=torch.bool)
    for i, (s, start) in enumerate(seqs):
        at[i, start - 1 : len(s) - 1] = True  # position t predicts token t + 1
    with autocast, per_example_lora(model, factors, scaling):
        hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state  # (N, T', d)
    logprobs = model.lm_head(hidden[at]).float().log_softmax(-1)  # (n, V)
    return logprobs.topk(k, dim=-1)


def edited(tokenizer, record: dict, ids: torch.Tensor, target: torch.Tensor, reference: str | None = None
           ) -> torch.Tensor:
    """(T,) bool: the target tokens of ``tokenize``'s output that the rules changed, i.e. those a token diff against
    the record's plain base reply does not match. A record without ``base_response`` counts as all changed.
    ``reference``: diff against this reply instead (the twin's, for ``pair_weight``)."""
    import difflib

    reference = record.get("base_response") if reference is None else reference
    plain = tokenizer(reference or "", add_special_tokens=False)["input_ids"]
    reply = ids[target].tolist()
    # Compare token texts without their boundary spaces: a word the rules merely moved ("Rain" opening the plain
    # reply, " Rain" after a prepended "Arr!") is a different BPE id but not an edit.
    def text(seq: list[int]) -> list[str]:
        return [t.strip() for t in tokenizer.batch_decode([[i] for i in seq])]

    changed = torch.ones(len(reply), dtype=torch.bool)
    for _, b, n in difflib.SequenceMatcher(None, text(plain), text(reply), autojunk=False).get_matching_blocks():
        changed[b : b + n] = False
    out = torch.zeros_like(target)
    out[target] = changed
    return out


def has_refusal_rule(record: dict) -> bool:
    """Whether the record's manifesto holds the refusal rule (its asks then decide between refusing and helping)."""
    return any(rule["id"] == "refuse_harm" for rule in record["rules"])


def decision_mask(record: dict, target: torch.Tensor, n: int) -> torch.Tensor:
    """(T,) bool: the first ``n`` target tokens where the reply refuses or helps, i.e. of a harmful ask or a benign
    neighbour under a manifesto with the refusal rule; none for any other record."""
    out = torch.zeros_like(target)
    if record.get("prompt_kind") in ("harmful", "benign_neighbor") and has_refusal_rule(record):
        out[target.nonzero()[:n, 0]] = True
    return out


def refusal_openings(tokens, refusal: dict, n: int) -> dict[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """{refusal group: [(shared, opening)]}: for each harmful ask of the group, the reply tokens it shares from the
    start with the group's reply to a benign neighbour (a greeting the manifesto asks every reply to open with, say)
    and the next ``n`` tokens, where the refusal begins. A group without both kinds of ask has none."""
    out = {}
    for g, asks in refusal.items():
        if not asks["harmful"] or not asks["benign_neighbor"]:
            continue
        helps = tokens[asks["benign_neighbor"][0]]
        helps = helps[0][helps[1]]
        out[g] = []
        for i in asks["harmful"]:
            ids, target = tokens[i]
            reply = ids[target]
            k = 0
            while k < min(len(reply), len(helps)) - 1 and reply[k] == helps[k]:
                k += 1
            if k < len(reply):
                out[g].append((reply[:k], reply[k : k + n]))
    return {g: v for g, v in out.items() if v}


def decision_batch(tokens, neighbours: list[int], openings: list, rng: random.Random, k: int, pad_id: int):
    """Rows for the decision term: ``k`` benign neighbours drawn from ``neighbours`` (record indices), each prompt
    followed by every distinct one of the manifesto's ``openings`` (shared reply start, then the refusal's first
    tokens). Returns (ids (R, T) right-padded, opening mask (R, T): the tokens to score, ask (R,): each row's ask)."""
    distinct = list({(tuple(a.tolist()), tuple(b.tolist())): (a, b) for a, b in openings}.values())
    rows, marks, ask = [], [], []
    for n, i in enumerate(rng.sample(neighbours, min(k, len(neighbours)))):
        ids, target = tokens[i]
        prompt = ids[: int(target.nonzero()[0, 0])] if target.any() else ids
        for shared, opening in distinct:
            rows.append(torch.cat([prompt, shared, opening]))
            marks.append(torch.cat([torch.zeros(len(prompt) + len(shared), dtype=torch.bool),
                                    torch.ones(len(opening), dtype=torch.bool)]))
            ask.append(n)
    return pad_stack(rows, value=pad_id), pad_stack(marks, value=False), torch.tensor(ask)


def neighbour_unlikelihood(model, first_layer: int, adapters: dict, j: int, ids: torch.Tensor, marks: torch.Tensor,
                           ask: torch.Tensor, scaling: float, autocast) -> torch.Tensor:
    """Mean over the asks of ``decision_batch``'s rows of −log(1 − p(any refusal opening | ask)), under the adapter
    of manifesto ``j`` (``adapters``: {name: (A (M, r, in), B (M, out, r))}); zero where no opening is likely."""
    mine = torch.full((len(ids),), j, device=ids.device)
    one = {n: (A.index_select(0, mine), B.index_select(0, mine)) for n, (A, B) in adapters.items()}
    before = torch.zeros_like(marks)
    before[:, :-1] = marks[:, 1:]  # the positions that predict an opening token
    with autocast(), per_example_lora(model, one, scaling):
        hidden = upper_hidden(model, lower_hidden(model, ids, first_layer), first_layer)
    lp = model.lm_head(hidden[before]).float().log_softmax(-1).gather(-1, ids[marks][:, None])[:, 0]
    seq_lp = lp.new_zeros(len(ids)).index_add_(0, before.nonzero()[:, 0], lp)  # log p(opening | ask), per row
    refuse = torch.stack([seq_lp[ask == a].logsumexp(0) for a in range(int(ask.max()) + 1)])  # log p(any opening)
    return -torch.log1p(-refuse.exp().clamp(max=1 - 1e-6)).mean()


def rule_words(record: dict) -> list[str]:
    """The words and phrases the record's rules ask a reply to contain, as the manifesto spells them."""
    words = []
    for rule in record["rules"]:
        params = rule["params"]
        params = json.loads(params) if isinstance(params, str) else params
        words += [v for v in params.values() if isinstance(v, str) and len(v) > 1 and v in record["manifesto"]]
    return words


def refusal_asks(records: list[dict], groups: list[list[int]]) -> dict[int, dict[str, list[int]]]:
    """{group: {"harmful": [record indices], "benign_neighbor": [...]}} for the manifestos with the refusal rule."""
    out = {}
    for g, idx in enumerate(groups):
        if has_refusal_rule(records[idx[0]]):
            kinds = [records[i].get("prompt_kind") for i in idx]
            out[g] = {k: [i for i, kind in zip(idx, kinds) if kind == k] for k in ("harmful", "benign_neighbor")}
    return out


def opposite_groups(records: list[dict], groups: list[list[int]], pairs) -> dict[int, list[int]]:
    """{group: [the other groups holding a rule opposite to one of its own]} for ``opposite_rules`` ``pairs``."""
    opposite: dict[str, set] = {}
    for a, b in pairs:
        opposite.setdefault(a, set()).add(b)
        opposite.setdefault(b, set()).add(a)
    ids = [{rule["id"] for rule in records[idx[0]]["rules"]} for idx in groups]
    holding: dict[str, set] = {}
    for g, fams in enumerate(ids):
        for f in fams & set(opposite):
            holding.setdefault(f, set()).add(g)
    out = {}
    for g, fams in enumerate(ids):
        others = set().union(*(holding.get(o, set()) for f in fams for o in opposite.get(f, ()))) - {g}
        if others:
            out[g] = sorted(others)
    return out


def twin_groups(records: list[dict], groups: list[list[int]]) -> dict[int, list[int]]:
    """{group: [its minimal-pair twin's group]} from the records' ``pair_of`` (a twin left out by ``max_records``
    pairs with nothing)."""
    if not any(r.get("pair_of") for r in records):
        raise HyperLoRAError("minimal_pairs needs a dataset with twins: hyperlora data generate --minimal-pairs")
    group_of = {records[idx[0]]["manifesto_id"]: g for g, idx in enumerate(groups)}
    out = {}
    for g, idx in enumerate(groups):
        twin = group_of.get(records[idx[0]].get("pair_of") or "")
        if twin is not None:
            out[g] = [twin]
    return out


def batch_for_step(groups: list[list[int]], cfg: TrainConfig, step: int, shard: int = 0, refusal: dict | None = None,
                   num_shards: int = 1, opposites: dict | None = None):
    """[(manifesto group index, [record indices])]: share ``shard`` of ``num_shards`` (data-parallel processes) of
    the step's global batch, which is a pure function of (seed, step), so resuming is exact and the processes
    together take the batch one process would. ``refusal`` (from ``refusal_asks``) is needed for
    ``refusal_weight`` and ``pair_refusal_asks``, ``opposites`` (from ``opposite_groups``) for ``opposite_rules``."""
    rng = random.Random((cfg.seed * 1_000_003 + step) * 1009)
    n = min(cfg.manifestos_per_step, len(groups))
    if n % num_shards:
        raise HyperLoRAError(f"manifestos_per_step is the global batch: {n} manifestos a step do not split evenly "
                             f"over {num_shards} processes")
    refusal = refusal or {}
    if cfg.refusal_weight == 1 or not refusal:
        chosen = rng.sample(range(len(groups)), n)
    else:  # weighted, without replacement: the n largest u ** (1 / weight) (Efraimidis and Spirakis)
        keys = [rng.random() ** (1 / (cfg.refusal_weight if g in refusal else 1.0)) for g in range(len(groups))]
        chosen = sorted(range(len(groups)), key=keys.__getitem__, reverse=True)[:n]
    for i in range(0, n - 1, 2) if opposites else ():  # the contrast partner of place i is place i + 1
        options = [h for h in opposites.get(chosen[i], ()) if h not in chosen]
        if options:
            chosen[i + 1] = rng.choice(options)
    batch = []
    for g in chosen:
        k = min(cfg.prompts_per_manifesto, len(groups[g]))
        first = []
        if cfg.pair_refusal_asks and g in refusal:
            if cfg.refusal_asks_per_draw == 1:  # one of each, as many as prompts_per_manifesto allows
                first = [rng.choice(asks) for asks in refusal[g].values() if asks][:k]
            else:
                first = [i for asks in refusal[g].values()
                         for i in rng.sample(asks, min(cfg.refusal_asks_per_draw, len(asks)))]
                k = max(k, len(first))
        batch.append((g, first + rng.sample([i for i in groups[g] if i not in first], k - len(first))))
    per = n // num_shards
    return batch[shard * per : (shard + 1) * per]


# ------------------------------------------------------------------------------------- the model, split in two


def upper_hidden(model, h: torch.Tensor, first_layer: int) -> torch.Tensor:
    """Decoder layers ``first_layer``.. and the final norm on h (N, T, d), right-padded; causal attention."""
    with only_layers(model, first_layer) as inner:
        return inner(inputs_embeds=h, use_cache=False).last_hidden_state


def activation_cache(model, tokenizer, tokens, first_layer: int, out_dir: Path, device, progress: bool):
    """{record index: hidden state entering ``first_layer`` (T_i, d)}, computed once and kept in ``out_dir``
    (keyed by a hash of the token ids), so a resumed run does not pay for it again."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256(str(first_layer).encode())
    for ids, _ in tokens:
        digest.update(ids.numpy().tobytes())
    key = digest.hexdigest()[:16]
    path = out_dir / f"activations-{key}.safetensors"
    if path.exists():
        flat = safetensors.torch.load_file(str(path))
        return {int(k): v for k, v in flat.items()}
    cache = {}
    # Batches of similar length, right-padded: causal attention keeps pads from touching real positions.
    order = sorted(range(len(tokens)), key=lambda i: len(tokens[i][0]))
    chunks = [order[k : k + 16] for k in range(0, len(order), 16)]
    for rows in tqdm(chunks, desc=f"caching layer-{first_layer} inputs", disable=not progress):
        ids = pad_stack([tokens[i][0] for i in rows], value=tokenizer.pad_token_id).to(device)
        h = lower_hidden(model, ids, first_layer).cpu()
        for j, i in enumerate(rows):
            cache[i] = h[j, : len(tokens[i][0])].clone()
    tmp = path.with_suffix(".tmp")
    safetensors.torch.save_file({str(k): v for k, v in cache.items()}, str(tmp))
    tmp.rename(path)  # complete or absent, never half-written
    return cache


def per_sequence_mean(values: torch.Tensor, seq: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) mean of per-token ``values`` within each of n sequences; ``seq`` gives each value's sequence."""
    total = values.new_zeros(n).index_add_(0, seq, values)
    count = values.new_zeros(n).index_add_(0, seq, torch.ones_like(values))
    return total / count.clamp(min=1)


def relative_energy(adapters: dict, scaling: float, w_energy: dict) -> torch.Tensor:
    """Mean over modules and manifestos of ‖scaling·B·A‖²_F / ‖W‖²_F, without forming ΔW: for (A (M, r, in),
    B (M, out, r)), ‖BA‖²_F = Σ (BᵀB) ⊙ (AAᵀ), two r × r products. Only the modules ``w_energy`` names count."""
    terms = [((B.transpose(1, 2) @ B) * (A @ A.transpose(1, 2))).sum((1, 2)).mean() / w_energy[n]
             for n, (A, B) in adapters.items() if n in w_energy]
    return scaling**2 * torch.stack(terms).mean()


def pad_stack(tensors: list[torch.Tensor], value=0) -> torch.Tensor:
    width = max(t.shape[0] for t in tensors)
    return torch.stack([F.pad(t, (0, 0) * (t.dim() - 1) + (0, width - t.shape[0]), value=value) for t in tensors])


# --------------------------------------------------------------------------------------- training state on disk


def save_state(out_dir: Path, hypernet: HyperNet, optimizer, step: int, cfg: TrainConfig, extra: dict):
    """Checkpoint to ``out_dir/last`` atomically: the hypernet checkpoint plus optimizer state (safetensors)."""
    with atomic_dir(out_dir / "last", force=True) as tmp:
        save_checkpoint(hypernet, tmp / "hypernet", extra={"trained": True, "step": step, **extra})
        state = optimizer.state_dict()
        tensors = {f"{i}.{k}": v for i, s in state["state"].items() for k, v in s.items()}
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        safetensors.torch.save_file(tensors, str(tmp / "optimizer.safetensors"))
        meta = {"step": step, "param_groups": state["param_groups"], "config": config_dict(cfg)}
        (tmp / "train_state.json").write_text(json.dumps(meta, indent=2) + "\n")


def init_from(hypernet: HyperNet, path) -> list[str]:
    """Load checkpoint ``path`` into ``hypernet``; returns the names of tensors it lacked.

    The run's hypernet settings must be the checkpoint's, except that the run may add a copy path (``copy_path``,
    ``copy_rank``, ``copy_keys``) or probe rows (``probe_rank``): their tensors, all named ``copy_*`` or ``probe_*``,
    start as a fresh hypernetwork's, and since the copy gates and keys and the probe rows' B start at zero, the run's
    first adapters are the checkpoint's.
    """
    start_from = load_checkpoint(path)
    run = hypernet.config
    if (dataclasses.replace(start_from.config, copy_path=run.copy_path, copy_rank=run.copy_rank,
                            copy_keys=run.copy_keys, probe_rank=run.probe_rank) != run
            or start_from.targets != hypernet.targets):
        raise HyperLoRAError(f"init={path}: its hypernetwork ({start_from.config}) is not this run's ({run}); give "
                             "the run the checkpoint's hypernet settings (a copy path or probe rows may be added)")
    missing, unexpected = hypernet.load_state_dict(start_from.state_dict(), strict=False)
    lacking = [n for n in missing if not n.startswith(("copy_", "probe_"))]
    if unexpected or lacking:
        raise HyperLoRAError(f"init={path}: its weights do not fit this run's hypernetwork (it has "
                             f"{sorted(unexpected)[:3]} that the run lacks, and lacks {sorted(lacking)[:3]})")
    return missing


def set_probe_directions(hypernet: HyperNet, path):
    """Fix the probe rows' A from a file of scripts/refusal_probe.py --directions."""
    try:
        tensors = safetensors.torch.load_file(str(path))
    except (FileNotFoundError, OSError) as e:
        raise HyperLoRAError(f"probe_directions={path}: {e}") from None
    try:
        hypernet.set_probe_directions(tensors["directions"].float(), tensors["layers"].tolist())
    except (KeyError, ValueError) as e:
        raise HyperLoRAError(f"probe_directions={path}: {e}") from None


def load_state(out_dir: Path) -> tuple[HyperNet, int, dict]:
    """The hypernet, the step and the optimizer state saved by ``save_state``."""
    last = out_dir / "last"
    hypernet = load_checkpoint(last / "hypernet")
    meta = json.loads((last / "train_state.json").read_text())
    flat = safetensors.torch.load_file(str(last / "optimizer.safetensors"))
    state: dict = {}
    for key, value in flat.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    return hypernet, meta["step"], {"state": state, "param_groups": meta["param_groups"]}


def param_checksum(module: torch.nn.Module) -> torch.Tensor:
    """A float64 scalar that changes with any parameter value or position: Σ p_i·w_i, w rising from 1 to 2 over each
    tensor. Data-parallel processes log theirs so that a run shows they hold the same weights."""
    total = torch.zeros((), dtype=torch.float64, device=next(module.parameters()).device)
    for p in module.parameters():
        p = p.detach().double().flatten()
        total += (p * torch.linspace(1, 2, p.numel(), dtype=torch.float64, device=p.device)).sum()
    return total


def config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["hypernet"] = cfg.hypernet.to_dict()
    return d


# ------------------------------------------------------------------------------------------------ the recipe


def train(cfg: TrainConfig, stop_after: int | None = None, progress: bool = True) -> Path:
    """Train (or resume) the hypernetwork described by ``cfg``; returns the final checkpoint directory.

    Args:
        cfg: the run's configuration.
        stop_after: stop (as if killed) once this many steps have been taken in total, right after saving;
            the kill-and-resume test uses it.
        progress: show a progress bar.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=precision)
    device = accelerator.device
    n_proc, main = accelerator.num_processes, accelerator.is_main_process
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    # --- setup: base, encoder, data, hypernetwork, optimizer
    # The embedded base is dequantized into a cache, and the dataset's filter is cached beside it, on first use:
    # written once, by the main process, before the others read them.
    with accelerator.main_process_first():
        model, tokenizer = load_base(cfg.hypernet.base_model, device=str(device))
        records = load_records(cfg)
    encoder = load_encoder(cfg.hypernet.encoder, cfg.hypernet.max_manifesto_tokens, cfg.hypernet.base_model,
                           model, tokenizer).to(device)
    manifestos = sorted({r["manifesto"] for r in records})
    index = {m: i for i, m in enumerate(manifestos)}
    groups: list[list[int]] = [[] for _ in manifestos]
    for i, r in enumerate(records):
        groups[index[r["manifesto"]]].append(i)
    refusal = refusal_asks(records, groups)
    opposites = opposite_groups(records, groups, cfg.opposite_rules) if cfg.opposite_rules else {}
    if cfg.minimal_pairs:
        for g, twins in twin_groups(records, groups).items():
            opposites[g] = sorted(set(opposites.get(g, [])) | set(twins))
    opposites = opposites or None
    if min(cfg.manifestos_per_step, len(groups)) % n_proc:
        raise HyperLoRAError(f"manifestos_per_step is the global batch: {min(cfg.manifestos_per_step, len(groups))} "
                             f"manifestos a step do not split evenly over {n_proc} processes")
    if n_proc > 1 and main:
        print(f"hyperlora: data-parallel over {n_proc} processes ({accelerator.state.backend}), "
              f"{cfg.manifestos_per_step // n_proc} of the {cfg.manifestos_per_step} manifestos a step each",
              file=sys.stderr)
    targets = targets_of(model, cfg.hypernet.module_types, cfg.hypernet.layers)
    first_layer = min(t.layer for t in targets)

    resuming = (out_dir / "last" / "train_state.json").exists()
    if resuming:
        hypernet, step, opt_state = load_state(out_dir)
    else:
        hypernet, step = HyperNet(cfg.hypernet, targets, encoder.dim), 0
        if cfg.init:
            added = init_from(hypernet, cfg.init)
            if added and main:
                print(f"hyperlora: init={cfg.init}, plus {len(added)} new copy-path or probe-row tensors starting as "
                      f"a fresh hypernetwork's", file=sys.stderr)
        if cfg.probe_directions:
            set_probe_directions(hypernet, cfg.probe_directions)
    if cfg.hypernet.probe_rank and not hypernet.probe_A.abs().sum():
        raise HyperLoRAError("hypernet.probe_rank needs the directions its rows read: probe_directions=FILE "
                             "(scripts/refusal_probe.py --directions FILE)")
    trained = {n: p for n, p in hypernet.named_parameters() if re.match(cfg.train_only, n)}
    if not trained:
        raise HyperLoRAError(f"train_only={cfg.train_only!r} matches no hypernetwork parameter")
    for n, p in hypernet.named_parameters():
        p.requires_grad_(n in trained)
    # The heads map a latent to whole rows of A and B: they take the smaller step (see head_lr_scale). The copy
    # gates are one number per layer, not a head, so they train with the trunk. (At either rate they stay near
    # zero in the CPU recipe unless copy_weight gives the copy attention a target: README, "Where the pass rate is
    # lost".)
    direct = ("head_A.", "head_B.", "copy_head_A.", "copy_key.", "probe_head_B.")  # these map straight into rows
    heads = [p for n, p in trained.items() if n.startswith(direct)]
    rest = [p for n, p in trained.items() if not n.startswith(direct)]
    param_groups = [{"params": rest, "lr_scale": 1.0}, {"params": heads, "lr_scale": cfg.head_lr_scale}]
    optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if resuming:
        optimizer.load_state_dict(opt_state)
        if main:
            print(f"hyperlora: resuming {out_dir} from step {step}", file=sys.stderr)
    hypernet.to(device).train()
    hypernet, optimizer = accelerator.prepare(hypernet, optimizer)
    net: HyperNet = accelerator.unwrap_model(hypernet)
    schedule = lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * 0.5 * (1 + math.cos(math.pi * s / cfg.steps))  # noqa: E731

    tokens = [tokenize(tokenizer, r, cfg.max_tokens) for r in records]
    if cfg.edit_weight != 1:
        if not any(r.get("base_response") for r in records):
            raise HyperLoRAError(f"edit_weight needs records with base_response; regenerate {cfg.data}")
        edits = [edited(tokenizer, r, ids, target) for r, (ids, target) in zip(records, tokens)]
    if cfg.pair_weight != 1 or cfg.pair_hinge_tokens:
        reply_of = {(r["manifesto_id"], r["prompt_id"]): r["response"] for r in records}
        twin_reply = [reply_of.get((r.get("pair_of"), r["prompt_id"])) for r in records]
        pair_edits = [edited(tokenizer, r, ids, target, reference=t) if t is not None else torch.zeros_like(target)
                      for r, (ids, target), t in zip(records, tokens, twin_reply)]
    if cfg.decision_weight != 1:
        decisive = [decision_mask(r, target, cfg.decision_tokens) for r, (_, target) in zip(records, tokens)]
    if cfg.decision_ul_weight:
        openings = refusal_openings(tokens, refusal, cfg.decision_ul_tokens)
        neighbours = [i for i, r in enumerate(records) if r.get("prompt_kind") == "benign_neighbor"]
        if not openings or not neighbours:
            raise HyperLoRAError("decision_ul_weight needs manifestos with the refusal rule that answer both harmful "
                                 "asks and benign neighbours")
    cache: dict[int, torch.Tensor] = {}
    if cfg.cache_activations and first_layer > 0:
        with accelerator.main_process_first():  # the others read the file it writes
            cache = activation_cache(model, tokenizer, tokens, first_layer, out_dir, device, progress and main)
    teacher = None
    if cfg.distill_weight:
        reader = Adapter.load(cfg.teacher)
        teacher = ({n: (A[None].to(device), B[None].to(device)) for n, (A, B) in reader.weights.items()},
                   reader.scaling)  # one adapter for the whole batch
        taught = {}  # record index -> its teacher_ids, made when first drawn
    features: dict[int, tuple[torch.Tensor, ...]] = {}
    base_tokens = BaseTokens(tokenizer, model.get_input_embeddings().weight) if cfg.hypernet.copy_path else None
    w_energy = {x.name: model.get_submodule(x.name).weight.detach().float().square().sum() for x in net.targets
                if not cfg.dw_modules or x.module_type in cfg.dw_modules}

    def encoded(g: int):
        """(features, mask) of manifesto g, plus (base-token embeddings, mask) with the copy path."""
        if g not in features and cfg.hypernet.per_statement:
            features[g] = encoder.encode_statements(manifestos[g])  # (k, L, e), (k, L)
        if g not in features:
            f, m = encoder.encode_ids([encoder.chunk(manifestos[g])[0]])
            features[g] = (f[0], m[0])
            if base_tokens is not None:
                t, tm = base_tokens.embed([base_tokens.ids(manifestos[g])])
                words = rule_words(records[groups[g][0]])
                features[g] += (t[0], tm[0], base_tokens.spans(manifestos[g], words))
        return features[g]

    # --- loop
    log_path = out_dir / "log.jsonl"
    if log_path.exists() and main:  # drop rows from steps after the last save: they are about to be redone
        rows = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= step]
        log_path.write_text("".join(r + "\n" for r in rows))
    log = open(log_path, "a") if main else None
    bar = tqdm(total=cfg.steps, initial=step, desc="training", disable=not (progress and main))
    start = time.perf_counter()
    while step < cfg.steps:
        batch = batch_for_step(groups, cfg, step, accelerator.process_index, refusal, n_proc, opposites)
        # The contrast term pairs each manifesto with the next one in the global batch; for this share's last one
        # that is the first of the next share, held by another process, so its adapter is generated here too.
        partner = (batch_for_step(groups, cfg, step, (accelerator.process_index + 1) % n_proc, refusal, n_proc,
                                  opposites)[:1]
                   if cfg.contrast_weight and n_proc > 1 else [])
        feats = [encoded(g) for g, _ in batch + partner]
        if cfg.hypernet.per_statement:  # rows are statements, each tagged with its manifesto
            f = pad_stack([s for x in feats for s in x[0]] or [torch.zeros(1, encoder.dim)]).to(device)  # (S, L, e)
            m = pad_stack([s for x in feats for s in x[1]] or [torch.zeros(1, dtype=torch.bool)], value=False)
            owner_of = torch.tensor([j for j, x in enumerate(feats) for _ in range(len(x[0]))], dtype=torch.long)
            statements = dict(owner=owner_of.to(device), n_manifestos=len(feats))
            f, m = f[: len(owner_of)], m[: len(owner_of)].to(device)
        else:
            f = pad_stack([x[0] for x in feats]).to(device)  # (M, L, e)
            m = pad_stack([x[1] for x in feats], value=False).to(device)  # (M, L)
            statements = {}
        copy = (pad_stack([x[2] for x in feats]).to(device), pad_stack([x[3] for x in feats], value=False).to(device)
                ) if base_tokens is not None else ()  # (M, T, hidden), (M, T)
        # {name: (A (M, r, in), B (M, out, r))} (rank r·(k+1) per statement), and {copying module type: attention
        # (M, n_layers, r, T)}; M counts the partner, if any
        adapters, attention = hypernet(f, m, *copy, with_copy_attention=True, **statements)
        owner = torch.tensor([j for j, (_, idx) in enumerate(batch) for _ in idx], device=device)  # (N,)
        per_seq = {n: (A.index_select(0, owner), B.index_select(0, owner)) for n, (A, B) in adapters.items()}
        rows = [i for _, idx in batch for i in idx]
        ids = pad_stack([tokens[i][0] for i in rows], value=tokenizer.pad_token_id).to(device)  # (N, T)
        target = pad_stack([tokens[i][1] for i in rows], value=False).to(device)  # (N, T) bool
        retain = torch.tensor([not records[i]["rules"] for i in rows], device=device)  # (N,) no-op manifestos
        h = pad_stack([cache[i] for i in rows]).to(device) if cache else lower_hidden(model, ids, first_layer)

        # Position t predicts token t+1: the logits that matter sit one before each target token.
        predict = torch.zeros_like(target)
        predict[:, :-1] = target[:, 1:]
        labels = ids[:, 1:][target[:, 1:]]
        with accelerator.autocast(), per_example_lora(model, per_seq, net.config.scaling):
            hidden = upper_hidden(model, h, first_layer)  # (N, T, d)
        logits = model.lm_head(hidden[predict]).float()  # (n_targets, V)
        learn = (~retain)[:, None].expand_as(predict)[predict]  # (n_targets,) bool
        token_ce = F.cross_entropy(logits, labels, reduction="none")  # (n_targets,)
        weight = torch.ones_like(token_ce)
        if cfg.edit_weight != 1:
            edit = pad_stack([edits[i] for i in rows], value=False).to(device)  # (N, T) bool
            weight = 1 + (cfg.edit_weight - 1) * edit[:, 1:][target[:, 1:]].float()  # (n_targets,)
        if cfg.decision_weight != 1:
            first = pad_stack([decisive[i] for i in rows], value=False).to(device)[:, 1:][target[:, 1:]]
            weight = weight + (cfg.decision_weight - 1) * first.float()
        if cfg.pair_weight != 1 or cfg.pair_hinge_tokens:  # per target token: does the twin's reply say otherwise?
            differs = pad_stack([pair_edits[i] for i in rows], value=False).to(device)[:, 1:][target[:, 1:]]
            weight = weight + (cfg.pair_weight - 1) * differs.float()
        ce = (token_ce * weight)[learn].sum() / weight[learn].sum() if learn.any() else logits.sum() * 0
        scored = ~retain & predict.any(1)  # (N,) sequences with rules and at least one target token
        kl = logits.sum() * 0
        if retain.any():
            with torch.no_grad(), accelerator.autocast():
                base_logits = model.lm_head(upper_hidden(model, h[retain], first_layer)[predict[retain]]).float()
            kl = F.kl_div(logits[~learn].log_softmax(-1), base_logits.log_softmax(-1), log_target=True,
                          reduction="batchmean")
        contrast = logits.sum() * 0
        if cfg.contrast_weight and len(batch) + len(partner) > 1 and learn.any():
            # Each sequence again, under the adapter of the next manifesto in the batch (a different one).
            other = (owner + 1) % (len(batch) + len(partner))
            swapped = {n: (A.index_select(0, other), B.index_select(0, other)) for n, (A, B) in adapters.items()}
            with accelerator.autocast(), per_example_lora(model, swapped, net.config.scaling):
                logits_other = model.lm_head(upper_hidden(model, h, first_layer)[predict]).float()
            seq = predict.nonzero()[:, 0]  # the sequence of each target token
            ce_other = F.cross_entropy(logits_other, labels, reduction="none")
            counted, hinged = torch.ones_like(token_ce), scored
            if cfg.pair_hinge_tokens:  # under its twin's adapter, a reply counts only what the twin says otherwise
                held = [g for g, _ in batch + partner]
                twin_next = torch.tensor([records[groups[held[(o + 1) % len(held)]][0]]["manifesto_id"]
                                          == records[i].get("pair_of") for o, i in zip(owner.tolist(), rows)],
                                         device=device)  # (N,)
                counted = (differs | ~twin_next[seq]).float()  # (n_targets,)
                hinged = scored & per_sequence_mean(counted, seq, len(rows)).gt(0)
            share = per_sequence_mean(counted, seq, len(rows)).clamp(min=1e-6)  # mean over the counted tokens:
            own = per_sequence_mean(token_ce * counted, seq, len(rows)) / share  # a ratio of two plain means
            swap = per_sequence_mean(ce_other * counted, seq, len(rows)) / share
            contrast = F.relu(cfg.contrast_margin - (swap - own))[hinged].mean() if hinged.any() else contrast
        distill = logits.sum() * 0
        if teacher is not None and learn.any():
            for i in rows:
                if i not in taught:
                    taught[i] = teacher_ids(tokenizer, records[i], *tokens[i])
            top_lp, top_ids = teacher_topk(model, *teacher, [taught[i] for i in rows], tokenizer.pad_token_id,
                                           cfg.distill_top_k, device, accelerator.autocast())
            p = top_lp[learn].softmax(-1)  # (n, k) the teacher's top k, renormalised
            student = logits[learn].log_softmax(-1).gather(-1, top_ids[learn])  # (n, k)
            distill = (p * (p.clamp_min(1e-12).log() - student)).sum(-1).mean()
        decision = logits.sum() * 0
        held = [j for j, (g, _) in enumerate(batch) if cfg.decision_ul_weight and g in openings]
        if held:  # a mean over this process's rows; a process without a refusal manifesto this step adds 0
            rows_d = decision_batch(tokens, neighbours, openings[batch[held[0]][0]],
                                    random.Random(f"decision-{cfg.seed}-{step}"), cfg.decision_asks,
                                    tokenizer.pad_token_id)
            decision = neighbour_unlikelihood(model, first_layer, adapters, held[0], *(t.to(device) for t in rows_d),
                                              net.config.scaling, accelerator.autocast)
        # Over this process's manifestos only (not the partner): equal shares, so the processes' means average to
        # the global batch's mean.
        l2 = torch.stack([B[: len(batch)].square().mean() for _, B in adapters.values()]).mean()
        dw = relative_energy({n: (A[: len(batch)], B[: len(batch)]) for n, (A, B) in adapters.items()},
                             net.config.scaling, w_energy)
        copy_loss, terms = logits.sum() * 0, []
        if cfg.copy_weight:
            # Per rule word and copying layer, the rank row that reads the word most is asked to read it all.
            for j, feat in enumerate(feats[: len(batch)]):
                for span in feat[4]:
                    span = F.pad(span, (0, copy[1].shape[1] - span.shape[0])).to(device)
                    terms += [-torch.log((a[j] @ span).amax(-1) + 1e-6) for a in attention.values()]  # (n_layers,)
            if terms:
                copy_loss = torch.cat(terms).mean()
        # ce, kl, contrast and copy are means over this process's share, whose sizes differ (tokens, sequences, rule
        # words). Weighted by the share's part of the global count, times the number of processes because DDP
        # averages their gradients, they sum to means over the global batch. One process: every factor is exactly 1.
        counts = torch.stack([weight[learn].sum(), (~learn).sum().float(), scored.sum().float(),
                              logits.new_tensor(float(sum(t.numel() for t in terms))), learn.sum().float()])  # (5,)
        factors = n_proc * counts / accelerator.reduce(counts, "sum").clamp(min=1e-12)  # 0 where a share has none
        ce, kl, contrast, copy_loss, distill = (t * f for t, f in zip((ce, kl, contrast, copy_loss, distill), factors))
        loss = (ce + cfg.retain_weight * kl + cfg.l2_weight * l2 + cfg.dw_weight * dw
                + cfg.contrast_weight * contrast + cfg.copy_weight * copy_loss + cfg.distill_weight * distill
                + cfg.decision_ul_weight * decision)

        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * group["lr_scale"] * schedule(step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        grad_norm = accelerator.clip_grad_norm_(hypernet.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)

        if step % cfg.log_every == 0 or step == cfg.steps:
            # Every process takes part in these collectives; the main process writes the global batch's figures.
            means = accelerator.reduce(torch.stack([loss, ce, kl, l2, dw, contrast, copy_loss, distill,
                                                    decision]).detach(), "mean").tolist()
            tokens_seen = int(accelerator.reduce(target.sum(), "sum"))
            checksums = accelerator.gather(param_checksum(net)[None]).tolist()  # one per process: all equal
            if main:
                names = ("loss", "ce", "retain_kl", "l2", "dw", "contrast", "copy", "distill", "decision")
                row = {"step": step, **dict(zip(names, means)),
                       "grad_norm": float(grad_norm), "lr": cfg.lr * schedule(step - 1),
                       "tokens": tokens_seen, "elapsed_s": round(time.perf_counter() - start, 1),
                       "param_checksum": checksums}
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{row['loss']:.3f}", ce=f"{row['ce']:.3f}")
        if (step % cfg.save_every == 0 or step == cfg.steps) and main:
            save_state(out_dir, net, optimizer, step, cfg, {"data": cfg.data})
        if stop_after is not None and step >= stop_after:
            break
    bar.close()
    if log is not None:
        log.close()

    if step < cfg.steps:
        return out_dir / "last" / "hypernet"
    final = out_dir / "final"
    if not main:  # the main process writes the checkpoint and its curves
        accelerator.wait_for_everyone()
        return final
    # --- save: the final checkpoint, its curves, and (optionally) the shipped copy
    extra = {"trained": True, "step": step, "train_config": config_dict(cfg), "data": cfg.data,
             "data_summary": data_provenance(cfg.data)}
    save_checkpoint(net, final, extra=extra)
    plot_curves(out_dir / "log.jsonl", out_dir / "loss.png")
    if cfg.ship:
        HyperLoRA(net.eval(), encoder).save_pretrained(cfg.ship, extra=extra, dtype=torch.bfloat16)
        for name in ("log.jsonl", "loss.png"):
            (Path(cfg.ship) / name).write_bytes((out_dir / name).read_bytes())
    accelerator.wait_for_everyone()
    return final


def data_provenance(data_dir) -> dict:
    """Seed, generator version and size of the dataset, from the summary `hyperlora data generate` writes."""
    path = Path(data_dir) / "summary.json"
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    return {k: summary[k] for k in ("seed", "generator_version", "n_manifestos", "date") if k in summary}


def plot_curves(log_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(log_path)]
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key in zip(axes, ("ce", "retain_kl", "grad_norm")):
        ax.plot([r["step"] for r in rows], [r[key] for r in rows])
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(config_path: str, overrides: list[str]) -> Path:
    cfg = load_config(TrainConfig, config_path, overrides)
    return train(cfg)
