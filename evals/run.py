"""`hyperlora eval`: the generated adapter beside every other way to give a model its values, with controls.

    hyperlora eval --out out/eval --quick
    hyperlora eval --out out/eval --checkpoint DIR --data DIR --set max_manifestos=8

(in Python: ``run_eval``; the CLI is the one entry point, so this module never imports it back)

Conditions (names as in ``results.json``), for each eval case (manifesto m, prompt p):
- ``base``: p alone (the chat template's default system turn).
- ``system_prompt``: m as the system turn.  ``system_prompt_example``: m plus one worked exchange of the same
  manifesto (another dataset record) before p.
- ``adapter``: the hypernetwork's adapter for m, no prompt.  ``adapter_system_prompt``: both.
- ``adapter_guard``: the adapter's replies as ``hyperlora.guard`` passes them on: the kind refusal for a prompt its
  intent classifier blocks, the withheld message for a reply its answer check fails (no extra decoding).
- ``oracle_lora``: a LoRA trained on m's own data (rule targets on train-split prompts, never the eval prompts),
  prompt-baking style, with its training time.
- ``kv_prefix``: m's system turn prefilled once; its KV cache is reused for every prompt (the "warmed-up hidden
  state"); same function as ``system_prompt``, different cost.
- ``prompt_tuned``: m as the system turn, read by a *manifesto-reader* LoRA: one LoRA trained on train-split records
  with their own manifesto as the system turn (what a practitioner would otherwise do). Same behaviour the adapter
  aims at, but it pays m's context on every request: the hypernetwork's real competitor.
- controls: ``shuffled`` (the adapter of another eval manifesto, with other rules where possible), ``empty`` (the
  adapter of the empty manifesto), ``random`` (a random LoRA with the same per-module norm of ΔW as m's adapter),
  ``multitask`` (one LoRA trained on train-split records without reading their manifestos).
Every LoRA condition is decoded unmerged through per-example LoRA batching (same function as a merged adapter);
merged vs unmerged cost is measured separately as latency.
"""

import datetime
import hashlib
import json
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hyperlora.errors import HyperLoRAError

from .presets import PRESETS

CONDITIONS = ("base", "system_prompt", "system_prompt_example", "adapter", "adapter_guard", "adapter_system_prompt",
              "oracle_lora", "kv_prefix", "prompt_tuned", "shuffled", "empty", "random", "multitask")
CONTROLS = ("shuffled", "empty", "random", "multitask")


PROBE_METHOD = (
    "Prompts: the user turn `hello`, an empty user turn (both through the chat template), and a BOS-only prompt "
    "(the single BOS token, no template). Each is decoded greedily and at T = 1 with {seeds} seeds, "
    "{tokens} new tokens at most, with the base model and with the generated adapter of {k} eval manifesto(s). "
    "Corpus: every distinct train-split target, manifesto and prompt turn of the eval data ({docs} documents, "
    "{corpus_tokens} tokens), tokenized with the base tokenizer. Overlap: the longest run of consecutive sample "
    "tokens found verbatim in one corpus document, found exactly with a suffix array over the corpus "
    "(documents separated so no match crosses two). Reported: mean and max of that length, and the share of "
    "samples with a span of >= 20 and >= 50 tokens (95% bootstrap CIs over prompt x manifesto units, seeds "
    "averaged within a unit). Note: the corpus's plain targets are this base model's own greedy replies, so a high "
    "overlap for the base is expected; what matters is whether the adapter raises it."
)


def _key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]




class _Progress:
    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)

    def __call__(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _log(progress: bool, msg: str):
    if progress:
        print(f"hyperlora eval: {msg}", file=sys.stderr, flush=True)


def _qa_correct(reply: str, answers) -> bool:
    from .metrics import qa_correct

    return qa_correct(reply, answers)


def run_eval(out_dir, checkpoint=None, split=None, quick: bool = False, data_dir=None, seeds: int = 3,
             progress: bool = True, base: str | None = None, reader=None, fresh: bool = False, **overrides) -> dict:
    """Run every condition and metric and write ``out_dir/results.json``, ``report.md`` and PNG plots.

    Args:
        out_dir: output directory (written atomically; an existing eval output there is replaced, any other
            non-empty directory is refused).
        checkpoint: hypernetwork checkpoint dir (None: the shipped one).
        split: one split of the data (None: every test split present).
        quick: the small preset (a few minutes on 2 CPU cores); otherwise the full one.
        data_dir: dataset written by ``hyperlora data generate`` (None: generate seed 0 once into the cache).
        seeds: sampling seeds (>= 3 for the sampled metrics).
        progress: progress messages and bars on stderr.
        base: base model name (None: the checkpoint's base).
        reader: a saved manifesto-reader LoRA (``scripts/train_reader.py``, the same recipe) for ``prompt_tuned``,
            instead of training it here (about 19 of the full eval's minutes on 2 CPU cores).
        fresh: recompute the baselines instead of reading them from the eval memo (``evals/memo.py``: the
            conditions no checkpoint changes, kept from earlier runs of the same data, settings and code).
        overrides: any preset key (see ``PRESETS``), e.g. ``max_manifestos=10``.

    Returns:
        The results dict (as written to ``results.json``).
    """
    import torch

    t_start = time.perf_counter()
    timing = {}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(_threads(threads))
        return _run(out_dir, checkpoint, split, quick, data_dir, seeds, progress, base, reader, overrides, t_start,
                    timing, fresh)
    finally:
        torch.set_num_threads(threads)


def _threads(default: int) -> int:
    """Intra-op threads: $HYPERLORA_EVAL_THREADS, else 1 when other processes load the CPU, else torch's default.

    OpenMP threads spin while they wait for each other; when another process holds a core, a 2-thread matmul
    waits on a descheduled thread at every op. Measured on the 2-core dev machine next to a training job:
    greedy decoding at 1.9 s/token with 2 threads, 45 ms/token with 1.
    """
    import os

    if os.environ.get("HYPERLORA_EVAL_THREADS"):
        return max(1, int(os.environ["HYPERLORA_EVAL_THREADS"]))
    try:
        # Our own process counts about 1 towards the load; more than that means another one competes.
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1) - 0.5
    except OSError:
        busy = False
    return 1 if busy else default


@dataclass
class _Eval:
    """What the sections of one eval share; `_run` fills it section by section, in the order written here."""

    # setup: settings, data, model
    cfg: dict
    seeds: int
    progress: bool
    timing: dict
    dd: dict
    splits: list
    cases: list
    hl: object
    model: object
    tok: object
    eos_ids: set
    pad: int
    reader_dir: object = None
    saved_reader: dict | None = None
    memo: object = None  # evals.memo.Memo: the baselines kept between runs
    # manifestos in play and what each one gets
    train_pids: set = field(default_factory=set)
    refusal_items: list = field(default_factory=list)
    manifestos: dict = field(default_factory=dict)  # key -> {"text", "rules", "families"} (+ "split" for oracles)
    adapters: dict = field(default_factory=dict)  # name a Row uses -> LoRA factors
    adapter_ms: list = field(default_factory=list)
    delta_norms: dict = field(default_factory=dict)
    partner: dict = field(default_factory=dict)
    oracle_keys: list = field(default_factory=list)
    trained: dict = field(default_factory=dict)  # "oracle", "multitask", "reader" -> train_loras' result
    prefixes: dict = field(default_factory=dict)
    prefix_ms: dict = field(default_factory=dict)
    # the decode jobs and their replies
    jobs: list = field(default_factory=list)  # (workload, condition, item index, seed, Row)
    sampled_cases: list = field(default_factory=list)
    qa_items: list = field(default_factory=list)
    qa_keys: list = field(default_factory=list)
    probe_keys: list = field(default_factory=list)
    probe_units: list = field(default_factory=list)  # (model, prompt name, manifesto key or None)
    gen_ids: list = field(default_factory=list)
    texts: list = field(default_factory=list)
    by: dict = field(default_factory=dict)  # (workload, condition) -> item index -> job indices

    def row(self, cond: str, prompt, mkey: str, example=None, **kw):
        """The decoding row of ``cond`` for one prompt under manifesto ``mkey`` (None if cond has no row)."""
        from hyperlora.decode import Row
        from hyperlora.generation import chat_ids

        tok, text = self.tok, self.manifestos[mkey]["text"]
        if cond == "base":
            return Row(chat_ids(tok, prompt), **kw)
        if cond == "system_prompt":
            return Row(chat_ids(tok, prompt, text), **kw)
        if cond == "system_prompt_example":
            shots = list(example[0]) + [{"role": "assistant", "content": example[1]}] if example else []
            return Row(chat_ids(tok, shots + _msgs(prompt), text), **kw)
        if cond in ("adapter", "adapter_guard"):  # the guard acts on the adapter's replies (_guarded), not the model
            return Row(chat_ids(tok, prompt), adapter=f"gen:{mkey}", **kw)
        if cond == "adapter_system_prompt":
            return Row(chat_ids(tok, prompt, text), adapter=f"gen:{mkey}", **kw)
        if cond == "oracle_lora":
            return Row(chat_ids(tok, prompt), adapter=f"oracle:{mkey}", **kw) if mkey in self.oracle_keys else None
        if cond == "kv_prefix":
            ids = chat_ids(tok, prompt, text)
            if ids[: len(self.prefixes[mkey]["ids"])] != self.prefixes[mkey]["ids"]:
                raise RuntimeError("the chat template does not keep the system turn as a prefix")
            return Row(ids, prefix=mkey, **kw)
        if cond == "prompt_tuned":
            return Row(chat_ids(tok, prompt, text), adapter="reader", **kw)
        if cond == "shuffled":
            return Row(chat_ids(tok, prompt), adapter=f"gen:{self.partner[mkey]}", **kw)
        if cond == "empty":
            return Row(chat_ids(tok, prompt), adapter="empty", **kw)
        if cond == "random":
            return Row(chat_ids(tok, prompt), adapter=f"random:{mkey}", **kw)
        if cond == "multitask":
            return Row(chat_ids(tok, prompt), adapter="multitask", **kw)
        raise ValueError(cond)

    def text(self, workload: str, cond: str, i: int) -> str:
        """The (first) reply of ``cond`` to item ``i`` of ``workload``."""
        return self.texts[self.by[(workload, cond)][i][0]]


@contextmanager
def _timed(timing: dict, key: str):
    t = time.perf_counter()
    yield
    timing[key] = time.perf_counter() - t


def _run(out_dir, checkpoint, split, quick, data_dir, seeds, progress, base, reader_dir, overrides, t_start, timing,
         fresh):
    out_dir = Path(out_dir)
    cfg = _settings(out_dir, quick, seeds, overrides)
    with _timed(timing, "setup_s"):
        ev = _setup(cfg, checkpoint, split, quick, data_dir, seeds, progress, base, reader_dir, timing)
        _open_memo(ev, data_dir, quick, fresh)
    _log(progress, f"{len(ev.cases)} cases from {', '.join(ev.splits)}; checkpoint {ev.hl.checkpoint_hash}")
    _gather_manifestos(ev)
    with _timed(timing, "adapters_s"):
        _generate_adapters(ev)
    _pick_oracles(ev)
    with _timed(timing, "training_s"):
        _train_loras(ev)
    with _timed(timing, "prefill_s"):
        _prefill_prefixes(ev)
    _build_jobs(ev)
    _decode_jobs(ev)

    results = {"meta": {}, "conditions": list(CONDITIONS)}
    results.update(_pass_rates(ev))
    _log(progress, "scoring (KL, perplexity)")
    with _timed(timing, "scoring_s"):
        results["kl_to_system"] = _kl_to_system(ev)
        results.update(_capability(ev))
    results.update(_refusal(ev))
    with _timed(timing, "probe_s"):
        results["hello_probe"] = _hello_probe(ev)
    results.update(_costs(ev))
    results.update(_training_costs(ev))
    timing["total_s"] = time.perf_counter() - t_start
    results["meta"] = _meta(ev, checkpoint, quick, data_dir)
    ev.memo.save()
    _write(out_dir, results)
    return results


# ---------------------------------------------------------------- setup: data, models, adapters

def _settings(out_dir: Path, quick, seeds, overrides) -> dict:
    """The preset with its overrides, after the checks that need nothing loaded."""
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and
                                                       not (out_dir / "results.json").exists())):
        raise HyperLoRAError(f"{out_dir} exists and is not an eval output directory; choose another --out")
    if not isinstance(seeds, int) or seeds < 1:
        raise HyperLoRAError(f"seeds must be a positive integer, got {seeds!r}")
    cfg = dict(PRESETS["quick" if quick else "full"])
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise HyperLoRAError(f"unknown eval settings {unknown}; known: {sorted(cfg)}")
    cfg.update(overrides)
    return cfg


def _setup(cfg, checkpoint, split, quick, data_dir, seeds, progress, base, reader_dir, timing) -> _Eval:
    """The eval cases, the hypernetwork and the base model (a saved reader is loaded first: a bad path fails early)."""
    import torch

    import hyperlora

    from . import data as D

    dd = D.load_data(data_dir, quick=quick, progress=progress)
    splits = D.resolve_splits(dd, split)
    cases = D.select_cases(dd, splits, cfg["max_manifestos"], cfg["prompts_per_manifesto"])
    if not cases:
        raise HyperLoRAError(f"no rule-bearing records in split(s) {', '.join(splits)}")
    hl = hyperlora.HyperLoRA.from_pretrained(checkpoint)
    saved_reader = _saved_reader(reader_dir, base or hl.config.base_model) if reader_dir else None
    model, tok = hyperlora.load_base(base or hl.config.base_model)
    hl.check_base(model)
    if torch.cuda.is_available():
        model.to("cuda")
    eos_ids = {tok.eos_token_id} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
    eos_ids.discard(None)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return _Eval(cfg=cfg, seeds=seeds, progress=progress, timing=timing, dd=dd, splits=splits, cases=cases, hl=hl,
                 model=model, tok=tok, eos_ids=eos_ids, pad=pad, reader_dir=reader_dir, saved_reader=saved_reader)


def _open_memo(ev: _Eval, data_dir, quick, fresh):
    """The eval memo of this run's fingerprint (its data, settings, base model and code)."""
    from . import data as D
    from . import memo as M

    key = M.fingerprint(ev.cfg, ev.seeds, ev.splits, data_dir or D.default_data_dir(quick), ev.hl.config.base_model,
                      ev.hl.config.rank, ev.reader_dir, str(next(ev.model.parameters()).device),
                      functions=(_train_loras, _kl_to_system, _neutral_nll))
    ev.memo = M.Memo(M.memo_root(), key, enabled=not fresh)


def _gather_manifestos(ev: _Eval):
    """Manifestos in play: eval cases first, then the refusal set (values manifestos)."""
    from . import data as D

    ev.train_pids = D.train_prompt_ids(ev.dd)
    ev.refusal_items = select_refusal_items(ev.dd, ev.splits, ev.cfg, ev.train_pids)
    for c in ev.cases:
        ev.manifestos.setdefault(_key(c.manifesto), {"text": c.manifesto, "rules": c.rules,
                                                     "families": c.family_ids})
    for it in ev.refusal_items:
        ev.manifestos.setdefault(_key(it["manifesto"]), {"text": it["manifesto"], "rules": it["rules"],
                                                          "families": [r["id"] for r in it["rules"]]})


def _generate_adapters(ev: _Eval):
    """Each manifesto's generated adapter and its random twin (same per-module norm), the empty manifesto's, and the
    shuffle partners."""
    from hyperlora.decode import lora_factors

    from .controls import delta_norm, random_like

    for k in ev.manifestos:
        ad = ev.hl.generate_adapter(ev.manifestos[k]["text"])
        ev.adapter_ms.append(ad.provenance["generation_ms"])
        ev.adapters[f"gen:{k}"] = lora_factors(ad)
        ev.delta_norms[k] = delta_norm(ev.adapters[f"gen:{k}"])
        ev.adapters[f"random:{k}"] = random_like(ev.adapters[f"gen:{k}"], seed=int(k, 16) % (1 << 31))
    ev.adapters["empty"] = lora_factors(ev.hl.generate_adapter("", allow_empty=True))
    ev.partner = _shuffle_partners(ev.manifestos)


# ---------------------------------------------------------------- oracle, multitask and reader LoRAs

def _pick_oracles(ev: _Eval):
    """The manifestos that get an oracle LoRA: the first `oracle_manifestos` per split, then the refusal ones."""
    manifestos, keys = ev.manifestos, ev.oracle_keys
    for s in ev.splits:
        for c in ev.cases:
            k = _key(c.manifesto)
            if c.split == s and k not in keys and sum(
                    1 for o in keys if manifestos[o].get("split") == s) < ev.cfg["oracle_manifestos"]:
                manifestos[k]["split"] = s
                keys.append(k)
    for it in ev.refusal_items:
        if _key(it["manifesto"]) not in keys:
            keys.append(_key(it["manifesto"]))


def _train_loras(ev: _Eval):
    """Train the oracle LoRAs, the multitask LoRA and (unless one was saved) the manifesto reader."""
    from . import data as D
    from .lora_train import train_loras

    cfg, model, tok, rank = ev.cfg, ev.model, ev.tok, ev.hl.config.rank
    exclude = {_pid(c.prompt) for c in ev.cases} | {_pid(it["prompt"]) for it in ev.refusal_items}
    groups = [D.manifesto_pairs(ev.manifestos[k]["rules"], cfg["oracle_pairs"], ev.train_pids, exclude, seed=i)
              for i, k in enumerate(ev.oracle_keys)]
    mt_pairs = D.multitask_pairs(ev.dd, cfg["multitask_pairs"])
    kept = ev.memo.loras()
    if kept is not None:
        _log(ev.progress, f"oracle and multitask LoRAs{'' if ev.reader_dir else ' and the reader'} from the eval memo")
        return _use_loras(ev, kept["oracle"], kept["multitask"], ev.saved_reader or kept["reader"])
    _log(ev.progress, f"training {len(ev.oracle_keys)} oracle LoRAs, the multitask LoRA"
                      f"{'' if ev.reader_dir else ' and the prompt_tuned reader'} ({cfg['oracle_steps']} steps; "
                      f"multitask {cfg['multitask_steps']}"
                      f"{'' if ev.reader_dir else '; reader ' + str(cfg['reader_steps'])})")
    # Oracle, multitask and reader have their own step counts: the oracle groups train jointly, then the others.
    oracle = train_loras(model, tok, groups, rank=rank, alpha=2.0 * rank, steps=cfg["oracle_steps"],
                         per_group=cfg["oracle_per_step"], lr=cfg["lr"], max_len=cfg["train_max_len"])
    multitask = train_loras(model, tok, [mt_pairs], rank=rank, alpha=2.0 * rank, steps=cfg["multitask_steps"],
                            per_group=cfg["multitask_per_step"], lr=cfg["lr"], max_len=cfg["train_max_len"], seed=1)
    if ev.saved_reader:
        reader = ev.saved_reader
    else:  # the reader sees the manifesto in its context, so its sequences are longer than the other LoRAs'
        reader = train_loras(model, tok, [D.reader_pairs(ev.dd, cfg["reader_pairs"])], rank=rank, alpha=2.0 * rank,
                             steps=cfg["reader_steps"], per_group=cfg["reader_per_step"], lr=cfg["lr"],
                             max_len=cfg["reader_max_len"], seed=2)
    ev.memo.put_loras({"oracle": oracle, "multitask": multitask, **({} if ev.saved_reader else {"reader": reader})})
    _use_loras(ev, oracle, multitask, reader)


def _use_loras(ev: _Eval, oracle: dict, multitask: dict, reader: dict):
    for k, f in zip(ev.oracle_keys, oracle["factors"]):
        ev.adapters[f"oracle:{k}"] = f
    ev.adapters["multitask"] = multitask["factors"][0]
    ev.adapters["reader"] = reader["factors"][0]
    ev.trained = {"oracle": oracle, "multitask": multitask, "reader": reader}


# ---------------------------------------------------------------- KV prefixes

def _prefill_prefixes(ev: _Eval):
    """Each manifesto's KV prefix: the longest prefix shared by every prompt under its system turn."""
    from hyperlora.decode import prefill_prefix
    from hyperlora.generation import chat_ids

    for k in ev.manifestos:
        text = ev.manifestos[k]["text"]
        probes = [chat_ids(ev.tok, p, text) for p in ("a", "Tell me more.")]
        ids = _common_prefix(probes)
        t0 = time.perf_counter()
        ev.prefixes[k] = prefill_prefix(ev.model, ids)
        ev.prefix_ms[k] = (time.perf_counter() - t0) * 1000


# ---------------------------------------------------------------- the decode jobs

def _build_jobs(ev: _Eval):
    """Every row every workload decodes (main, sampled, qa, refusal, probe), as ``ev.jobs``."""
    from .capability_data import QA

    cfg, cases, jobs = ev.cfg, ev.cases, ev.jobs
    for i, c in enumerate(cases):
        mk = _key(c.manifesto)
        for cond in CONDITIONS:
            r = ev.row(cond, c.prompt, mk, c.example, max_new=cfg["max_new_tokens"])
            if r is not None:
                jobs.append(("main", cond, i, None, r))
    ev.sampled_cases = list(range(min(cfg["sampled_cases"], len(cases))))
    for i in ev.sampled_cases:
        c = cases[i]
        for cond in ("base", "system_prompt", "adapter"):
            for s in range(ev.seeds):
                jobs.append(("sampled", cond, i, s, ev.row(cond, c.prompt, _key(c.manifesto), c.example,
                                                           max_new=cfg["max_new_tokens"], seed=1000 + s)))
    ev.qa_items = QA[: cfg["n_qa"]] if cfg["n_qa"] else QA
    ev.qa_keys = [ev.oracle_keys[j % len(ev.oracle_keys)] for j in range(len(ev.qa_items))]
    for j, q in enumerate(ev.qa_items):
        for cond in CONDITIONS:
            jobs.append(("qa", cond, j, None, ev.row(cond, q["question"], ev.qa_keys[j], None,
                                                     max_new=cfg["qa_tokens"])))
    for j, it in enumerate(ev.refusal_items):
        for cond in CONDITIONS:
            jobs.append(("refusal", cond, j, None, ev.row(cond, it["prompt"], _key(it["manifesto"]), None,
                                                          max_new=cfg["max_new_tokens"])))
    _add_probe_jobs(ev)


def _add_probe_jobs(ev: _Eval):
    """The hello probe's rows: three bare prompts, base and adapters, greedy and sampled."""
    from hyperlora.decode import Row
    from hyperlora.generation import chat_ids

    tok = ev.tok
    ev.probe_keys = ev.oracle_keys[: ev.cfg["probe_manifestos"]]
    probe_prompts = {"hello": chat_ids(tok, "hello"), "empty_turn": chat_ids(tok, ""),
                     "bos_only": [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]}
    for pname in probe_prompts:
        ev.probe_units.append(("base", pname, None))
        ev.probe_units += [("adapter", pname, k) for k in ev.probe_keys]
    for u, (who, pname, k) in enumerate(ev.probe_units):
        for s in [None] + list(range(ev.seeds)):
            ev.jobs.append(("probe", who, u, s, Row(list(probe_prompts[pname]), adapter=f"gen:{k}" if k else None,
                                                     seed=None if s is None else 2000 + s,
                                                     max_new=ev.cfg["probe_tokens"])))


# ---------------------------------------------------------------- one decoding pass for every workload

def _decode_jobs(ev: _Eval):
    """Decode every job in one pass; fills ``ev.gen_ids`` (token ids), ``ev.texts`` and the ``ev.by`` index. Rows
    no checkpoint changes are read from the eval memo when it has them."""
    from hyperlora.decode import decode

    from .memo import independent, row_key

    cfg, jobs = ev.cfg, ev.jobs
    # adapter_guard rows are the adapter's own: decoded once, under the adapter's condition.
    twin = {(w, i, seed): n for n, (w, cond, i, seed, _) in enumerate(jobs) if cond == "adapter"}
    guarded = {n: twin[w, i, seed] for n, (w, cond, i, seed, _) in enumerate(jobs) if cond == "adapter_guard"}
    _log(ev.progress, f"decoding {len(jobs) - len(guarded)} rows")
    with _timed(ev.timing, "decoding_s"):
        bar = _Progress(ev.progress, len(jobs) - len(guarded), "decoding")
        # Sampled rows share the batch with greedy ones; their temperature is the preset's except the probe's T = 1.
        gen_ids = [None] * len(jobs)
        for temp, sel in ((cfg["sample_temperature"], lambda j: j[0] != "probe"), (1.0, lambda j: j[0] == "probe")):
            idx = [n for n, j in enumerate(jobs) if sel(j) and n not in guarded]
            keys = {n: row_key(jobs[n][4], temp) for n in idx if independent(jobs[n][4])}
            for n, k in keys.items():
                gen_ids[n] = ev.memo.get("decode", k)
            todo = [n for n in idx if gen_ids[n] is None]
            bar(len(idx) - len(todo))
            outs = decode(ev.model, [jobs[n][4] for n in todo], ev.adapters, ev.prefixes, temperature=temp,
                          eos_ids=ev.eos_ids, pad_id=ev.pad, batch_size=cfg["batch_size"], progress=bar)
            for n, o in zip(todo, outs):
                gen_ids[n] = o
                if n in keys:
                    ev.memo.put("decode", keys[n], o)
        bar.close()
    if ev.memo.hits.get("decode"):
        _log(ev.progress, f"{ev.memo.hits['decode']} baseline rows read from the eval memo {ev.memo.key}")
    for n, m in guarded.items():
        gen_ids[n] = gen_ids[m]
    ev.gen_ids = gen_ids
    ev.texts = [ev.tok.decode(o, skip_special_tokens=True).strip() for o in gen_ids]
    asks = {"main": lambda i: (ev.cases[i].prompt, ev.cases[i].rules),
            "sampled": lambda i: (ev.cases[i].prompt, ev.cases[i].rules),
            "qa": lambda j: (ev.qa_items[j]["question"], ev.manifestos[ev.qa_keys[j]]["rules"]),
            "refusal": lambda j: (ev.refusal_items[j]["prompt"], ev.refusal_items[j]["rules"])}
    for n in guarded:
        w, _, i, _, _ = jobs[n]
        ev.texts[n] = _guarded(ev.texts[n], *asks[w](i))
    for n, (w, cond, i, _, _) in enumerate(jobs):
        ev.by.setdefault((w, cond), {}).setdefault(i, []).append(n)


# ---------------------------------------------------------------- pass rates

def _pass_rates(ev: _Eval) -> dict:
    """Greedy pass rates (all, by split, by family), the targets' own ceiling, the adapter's paired differences, and
    the sampled pass rates."""
    from .metrics import target_fits
    from .stats import bootstrap

    passes = _passes(ev)
    out = {"pass_rate": {cond: _pass_rate(ev, passes[cond]) for cond in CONDITIONS}}
    # What the data's own compliant targets score at this budget: no reply can pass more often than they do.
    fits = [float(target_fits(c, ev.tok, ev.cfg["max_new_tokens"])) for c in ev.cases]
    out["target_ceiling"] = {"all": bootstrap(fits), "by_split": {
        s: bootstrap([f for f, c in zip(fits, ev.cases) if c.split == s]) for s in ev.splits}}
    out["diffs"] = _adapter_diffs(ev, passes)
    out["adapter_minus_system_prompt"] = out["diffs"]["adapter-system_prompt"]
    out["pass_rate_sampled"] = _sampled_pass_rate(ev)
    return out


def _passes(ev: _Eval) -> dict:
    """cond -> case index -> (all rules passed, {rule: passed}) for the greedy main replies."""
    from hyperlora.data_gen.verifiers import verify_each

    passes = {cond: {} for cond in CONDITIONS}
    for cond in CONDITIONS:
        for i, ns in ev.by.get(("main", cond), {}).items():
            c = ev.cases[i]
            each = verify_each(c.rules, ev.texts[ns[0]], c.prompt, prompt_kind=c.prompt_kind)
            passes[cond][i] = (all(each.values()), each)
    return passes


def _pass_rate(ev: _Eval, have: dict) -> dict:
    from .stats import bootstrap

    entry = {"all": bootstrap([float(have[i][0]) for i in sorted(have)]), "by_split": {}, "by_family": {}}
    for s in ev.splits:
        entry["by_split"][s] = bootstrap([float(have[i][0]) for i in sorted(have) if ev.cases[i].split == s])
    fams = sorted({f for i in have for f in have[i][1]})
    for f in fams:
        entry["by_family"][f] = bootstrap([float(have[i][1][f]) for i in sorted(have) if f in have[i][1]])
    return entry


def _adapter_diffs(ev: _Eval, passes: dict) -> dict:
    """The adapter's pass rate minus each other condition's, paired over the cases both decoded."""
    from .stats import paired_bootstrap

    def paired(a: str, b: str, sel=lambda i: True):
        common = sorted(i for i in passes[a] if i in passes[b] and sel(i))
        return paired_bootstrap([float(passes[a][i][0]) for i in common], [float(passes[b][i][0]) for i in common])

    diffs = {}
    for other in ("system_prompt", "base", "oracle_lora", "kv_prefix", "prompt_tuned") + CONTROLS:
        diffs[f"adapter-{other}"] = {"all": paired("adapter", other),
                                     "by_split": {s: paired("adapter", other, lambda i, s=s: ev.cases[i].split == s)
                                                  for s in ev.splits}}
    return diffs


def _sampled_pass_rate(ev: _Eval) -> dict:
    from hyperlora.data_gen.verifiers import verify_each

    from .stats import bootstrap

    sampled = {}
    for cond in ("base", "system_prompt", "adapter"):
        vals = []
        for i in ev.sampled_cases:
            c = ev.cases[i]
            vals.append([float(all(verify_each(c.rules, ev.texts[n], c.prompt, prompt_kind=c.prompt_kind).values()))
                         for n in ev.by[("sampled", cond)][i]])
        sampled[cond] = {**bootstrap(vals), "temperature": ev.cfg["sample_temperature"], "seeds": ev.seeds}
    return sampled


# ---------------------------------------------------------------- KL to the system-prompted base

def _kl_to_system(ev: _Eval) -> dict:
    """KL(P_sys || P_cond) per token, teacher-forced on the system_prompt condition's own greedy replies."""
    from hyperlora.decode import score

    from .memo import independent, row_key
    from .stats import bootstrap

    kl = {cond: [] for cond in CONDITIONS}
    for i in range(len(ev.cases)):
        ref_n = ev.by[("main", "system_prompt")][i][0]
        target = ev.gen_ids[ref_n]
        if not target:
            continue
        conds = [cond for cond in CONDITIONS if i in ev.by.get(("main", cond), {})]
        rows = {cond: ev.jobs[ev.by[("main", cond)][i][0]][4] for cond in conds}
        # The reference is the system prompt's greedy reply, itself a baseline: a baseline's KL is kept in the memo.
        keys = {c: row_key(r, 0.0) + row_key(rows["system_prompt"], 0.0) for c, r in rows.items() if independent(r)}
        got = {c: ev.memo.get("kl", k) for c, k in keys.items()}
        todo = ["system_prompt"] + [c for c in conds if c != "system_prompt" and got.get(c) is None]
        lps = score(ev.model, [rows[c] for c in todo], [target] * len(todo), ev.adapters, ev.prefixes, ev.pad,
                    ev.cfg["batch_size"], fn=lambda _, lp: lp.cpu())
        ref = lps[0]
        for cond, lp in zip(todo, lps):
            # KL(P_sys || P_cond) per token; identical functions give ~1e-9 either side of 0 in fp32: clip at 0.
            got[cond] = max(0.0, float((ref.exp() * (ref - lp)).sum(-1).mean()))
            if cond in keys:
                ev.memo.put("kl", keys[cond], got[cond])
        for cond in conds:
            kl[cond].append(got[cond])
    return {cond: {**bootstrap(v), "units": "nats/token"} for cond, v in kl.items()}


# ---------------------------------------------------------------- capability: QA, perplexity, degenerate replies

def _neutral(cfg: dict) -> list:
    from .capability_data import NEUTRAL_TEXT

    return NEUTRAL_TEXT[: cfg["n_neutral"]] if cfg["n_neutral"] else NEUTRAL_TEXT


def _capability(ev: _Eval) -> dict:
    """``degenerate`` (the QA replies judged against their manifesto's rules) and ``capability`` (QA accuracy and
    retention, perplexity on neutral text and its ratio to the base's)."""
    from hyperlora.data_gen.verifiers import normalize_rules

    from .metrics import is_degenerate
    from .stats import bootstrap, paired_bootstrap

    qa_hits = {cond: [float(_qa_correct(ev.text("qa", cond, j), q["answers"])) for j, q in enumerate(ev.qa_items)]
               for cond in CONDITIONS}
    # Decay on general prompts: the QA replies under held-out manifestos, judged against what their rules allow.
    degenerate = {cond: bootstrap([float(is_degenerate(ev.text("qa", cond, j),
                                                       normalize_rules(ev.manifestos[ev.qa_keys[j]]["rules"])))
                                   for j in range(len(ev.qa_items))]) for cond in CONDITIONS}
    nll = _neutral_nll(ev)
    cap = {}
    for cond in CONDITIONS:
        ppl = bootstrap(nll[cond])
        ppl = {k: (math.exp(v) if k in ("value", "ci_low", "ci_high") and v is not None else v)
               for k, v in ppl.items()}
        cap[cond] = {
            "qa_accuracy": bootstrap(qa_hits[cond]),
            "qa_retention": paired_bootstrap(qa_hits[cond], qa_hits["base"], ratio=True),
            "perplexity": ppl,
            "perplexity_ratio": paired_bootstrap([math.exp(x) for x in nll[cond]],
                                                 [math.exp(x) for x in nll["base"]], ratio=True),
        }
    return {"degenerate": degenerate, "capability": cap}


def _neutral_nll(ev: _Eval) -> dict:
    """cond -> per-token NLL of each neutral passage after the neutral prompt."""
    from hyperlora.decode import score

    from .capability_data import NEUTRAL_PROMPT
    from .memo import independent, row_key

    nll = {cond: [] for cond in CONDITIONS}
    for j, passage in enumerate(_neutral(ev.cfg)):
        target = ev.tok(passage, add_special_tokens=False)["input_ids"]
        mk = ev.oracle_keys[j % len(ev.oracle_keys)]
        rows = {cond: ev.row(cond, NEUTRAL_PROMPT, mk) for cond in CONDITIONS}
        text_key = hashlib.sha1(passage.encode()).hexdigest()
        keys = {c: row_key(r, 0.0) + text_key for c, r in rows.items() if independent(r)}
        got = {c: ev.memo.get("nll", k) for c, k in keys.items()}
        todo = [c for c in CONDITIONS if got.get(c) is None]
        lps = score(ev.model, [rows[c] for c in todo], [target] * len(todo), ev.adapters, ev.prefixes, ev.pad,
                    ev.cfg["batch_size"])
        for cond, lp in zip(todo, lps):
            got[cond] = -lp / len(target)
            if cond in keys:
                ev.memo.put("nll", keys[cond], got[cond])
        for cond in CONDITIONS:
            nll[cond].append(got[cond])
    return nll


# ---------------------------------------------------------------- refusal

def _refusal(ev: _Eval) -> dict:
    from hyperlora.data_gen.verifiers import is_refusal

    from .stats import bootstrap

    out = {}
    for kind, name in (("harmful", "refusal_harmful"), ("benign_neighbor", "refusal_benign")):
        idx = [j for j, it in enumerate(ev.refusal_items) if it["kind"] == kind]
        out[name] = {cond: bootstrap([float(is_refusal(ev.text("refusal", cond, j))) for j in idx])
                     for cond in CONDITIONS}
    return out


# ---------------------------------------------------------------- hello probe

def _probe_corpus(ev: _Eval):
    """A suffix-array index over every distinct train-split target, manifesto and prompt turn."""
    from . import data as D
    from .probe import CorpusIndex

    docs = []
    for rec in ev.dd["train"] if "train" in ev.dd else []:
        docs.append(rec["response"])
        docs.append(rec["manifesto"])
        docs += [m["content"] for m in D._messages(rec["prompt"])]
    docs = list(dict.fromkeys(d for d in docs if d))
    return CorpusIndex(ev.tok(docs, add_special_tokens=False)["input_ids"] if docs else [])


def _hello_probe(ev: _Eval) -> dict:
    """How much of the training corpus the bare prompts' replies repeat verbatim, base against adapter."""

    index = _probe_corpus(ev)
    probe = {"method": PROBE_METHOD.format(seeds=ev.seeds, tokens=ev.cfg["probe_tokens"], k=len(ev.probe_keys),
                                           docs=index.n_documents, corpus_tokens=index.n_tokens),
             "corpus": {"documents": index.n_documents, "tokens": index.n_tokens}, "samples": []}
    for who in ("base", "adapter"):
        probe[who] = {}
        for mode in ("greedy", "sampled"):
            longest = []
            for pname, k, ns in _probe_rows(ev, who, mode):
                longest.append([index.longest_overlap(ev.gen_ids[n]) for n in ns])
                if mode == "greedy":
                    probe["samples"].append({"model": who, "prompt": pname, "manifesto": k,
                                             "text": ev.texts[ns[0]][:300], "longest": longest[-1][0]})
            probe[who][mode] = _overlap_stats(longest)
    probe["adapter_guard"] = _guarded_probe(ev, index)
    return probe


def _guarded_probe(ev: _Eval, index) -> dict:
    """The adapter's probe replies as ``hyperlora.guard`` passes them on (no extra decoding): how many it lets
    through unchanged, withholds or refuses, and how much of the corpus what it sends repeats."""
    from .stats import bootstrap

    asked = {"hello": "hello", "empty_turn": "", "bos_only": ""}
    out = {}
    for mode in ("greedy", "sampled"):
        longest, sent = [], []
        for pname, k, ns in _probe_rows(ev, "adapter", mode):
            unit_long, unit_sent = [], []
            for n in ns:
                text = _guarded(ev.texts[n], asked[pname], ev.manifestos[k]["rules"])
                same = text == ev.texts[n]
                ids = ev.gen_ids[n] if same else ev.tok(text, add_special_tokens=False)["input_ids"]
                unit_long.append(index.longest_overlap(ids))
                unit_sent.append(float(same))
            longest.append(unit_long)
            sent.append(unit_sent)
        out[mode] = {**_overlap_stats(longest), "passed_unchanged": bootstrap(sent)}
    return out


def _probe_rows(ev: _Eval, who: str, mode: str):
    """(prompt name, manifesto key, job indices) of each probe unit of ``who``, its greedy or its sampled rows."""
    for u, (w, pname, k) in enumerate(ev.probe_units):
        if w == who:
            yield pname, k, [n for n in ev.by[("probe", who)][u] if (ev.jobs[n][3] is None) == (mode == "greedy")]


def _overlap_stats(longest: list[list[int]]) -> dict:
    """The probe's figures from each unit's longest corpus overlaps (one per sample; CIs over units)."""
    from .stats import bootstrap

    flat = [x for unit in longest for x in unit]
    return {"longest_mean": bootstrap(longest), "longest_max": max(flat) if flat else 0,
            "span_ge_20": bootstrap([[float(x >= 20) for x in unit] for unit in longest]),
            "span_ge_50": bootstrap([[float(x >= 50) for x in unit] for unit in longest]),
            "n_samples": len(flat)}


# ---------------------------------------------------------------- costs, meta, writing

def _costs(ev: _Eval) -> dict:
    """Context per condition, tokens the adapter saves, adapter generation and prefill times, decoding latency."""
    from hyperlora.generation import chat_ids

    from .stats import bootstrap

    ctx = {}
    for cond in CONDITIONS:
        lens = [len(ev.jobs[ns[0]][4].ids) for ns in ev.by.get(("main", cond), {}).values()]
        ctx[cond] = sum(lens) / len(lens) if lens else None
    saved = [len(chat_ids(ev.tok, c.prompt, c.manifesto)) - len(chat_ids(ev.tok, c.prompt)) for c in ev.cases]
    out = {"context_tokens": ctx}
    out["tokens_saved"] = {**bootstrap(saved), "units": "tokens per request",
                           "note": "system-prompt context minus the adapter's (the chat template's default "
                                   "system turn), per request; the adapter's own context cost is zero"}
    out["adapter_ms"] = {**bootstrap(ev.adapter_ms), "units": "ms per manifesto (hypernetwork forward)",
                         "device": str(next(ev.model.parameters()).device)}
    out["kv_prefill_ms"] = bootstrap(list(ev.prefix_ms.values()))
    with _timed(ev.timing, "latency_s"):
        out["latency_ms_per_token"] = _latency(ev.model, ev.tok, ev.cases[0], ev.manifestos, ev.adapters,
                                               ev.prefixes, ev.cfg, ev.eos_ids, ev.pad, ev.row)
    return out


def _training_costs(ev: _Eval) -> dict:
    """Training time, steps, data and losses of the oracle LoRAs, the multitask LoRA and the reader."""
    oracle, rank, n = ev.trained["oracle"], ev.hl.config.rank, len(ev.oracle_keys)
    out = {"oracle_lora": {
        "train_seconds_total": oracle["seconds"], "n_loras": n,
        "train_seconds_per_lora": oracle["seconds"] / max(1, n),
        "steps": oracle["steps"], "pairs_per_lora": oracle["n_pairs"], "rank": rank,
        "final_loss": oracle["losses"][-1] if oracle["losses"] else None,
        "first_loss": oracle["losses"][0] if oracle["losses"] else None,
        "note": "trained jointly (one LoRA per manifesto, per-example batching); per-LoRA time = total / LoRAs",
    }}
    for name, trained in (("multitask", ev.trained["multitask"]), ("prompt_tuned", ev.trained["reader"])):
        out[name] = {"train_seconds": trained["seconds"], "steps": trained["steps"],
                     "pairs": trained["n_pairs"][0], "rank": trained.get("rank", rank),
                     "final_loss": trained["losses"][-1] if trained["losses"] else None,
                     "first_loss": trained["losses"][0] if trained["losses"] else None}
    if ev.reader_dir:
        out["prompt_tuned"]["loaded_from"] = str(ev.reader_dir)
    return out


def _meta(ev: _Eval, checkpoint, quick, data_dir) -> dict:
    import torch

    from . import data as D

    cases, hl = ev.cases, ev.hl
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": str(checkpoint) if checkpoint else "shipped", "checkpoint_hash": hl.checkpoint_hash,
        "checkpoint_untrained": all(v == 0 for v in ev.delta_norms.values()), "base_model": hl.config.base_model,
        "splits": ev.splits, "quick": quick, "seeds": ev.seeds, "settings": ev.cfg,
        "data_dir": str(data_dir or D.default_data_dir(quick)),
        "n_cases": len(cases), "n_manifestos": len({c.manifesto_id for c in cases}),
        "n_oracle_manifestos": len(ev.oracle_keys), "n_qa": len(ev.qa_items), "n_neutral": len(_neutral(ev.cfg)),
        "n_refusal": {"harmful": sum(it["kind"] == "harmful" for it in ev.refusal_items),
                      "benign_neighbor": sum(it["kind"] == "benign_neighbor" for it in ev.refusal_items)},
        "adapter_delta_norm_mean": sum(ev.delta_norms.values()) / len(ev.delta_norms),
        "device": str(next(ev.model.parameters()).device), "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "kl_reference": "teacher-forced on the system_prompt condition's own greedy replies",
        "pass_rate_decoding": f"greedy, {ev.cfg['max_new_tokens']} new tokens at most",
        "timing_s": {k: round(v, 1) for k, v in ev.timing.items()},
        "memo": ev.memo.summary(),
        "examples": [{"split": cases[i].split, "rules": [r["id"] for r in _rules(cases[i].rules)],
                      "prompt": cases[i].prompt[-1]["content"][:160],
                      "replies": {cond: ev.text("main", cond, i)[:240] for cond in
                                  ("base", "system_prompt", "adapter") if i in ev.by.get(("main", cond), {})}}
                     for i in range(min(3, len(cases)))],
    }


def _write(out_dir: Path, results: dict):
    """results.json, report.md and the plots, swapped in atomically."""
    from hyperlora.io import atomic_dir

    from .report import write_outputs

    with atomic_dir(out_dir, force=True) as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
        write_outputs(results, tmp)


def _guarded(reply: str, prompt, rules) -> str:
    """What a deployment with ``hyperlora.guard`` in front of and behind the adapter sends: the kind refusal for a
    prompt the intent classifier blocks, the withheld-reply message for a reply the answer check fails (told the
    manifesto's rules, so that asked-for capitals are not shouting), else the reply itself."""
    from hyperlora.data_gen.verifiers import normalize_rules

    from hyperlora import guard

    verdict = guard.check_prompt(prompt)
    if not verdict.allowed:
        return guard.refusal(verdict)
    return reply if guard.check_answer(reply, rules=normalize_rules(rules)).allowed else guard.WITHHELD


def _saved_reader(path, base_model: str) -> dict:
    """A reader LoRA saved by scripts/train_reader.py, in ``train_loras``' result layout (trained elsewhere: its
    steps and losses are the ones it recorded, its seconds here 0)."""
    from hyperlora.adapter import Adapter
    from hyperlora.decode import lora_factors

    adapter = Adapter.load(path)
    if adapter.base_model != base_model:
        raise HyperLoRAError(f"--reader {path} is a LoRA for {adapter.base_model}, not {base_model}")
    made = adapter.provenance
    loss = made.get("final_loss")
    return {"factors": [lora_factors(adapter)], "seconds": 0.0, "steps": made.get("steps"),
            "n_pairs": [made.get("pairs")], "rank": adapter.rank, "losses": [loss] if loss is not None else []}


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _msgs(prompt):
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _pid(prompt):
    from hyperlora.data_gen.prompts import prompt_id

    return prompt_id(_msgs(prompt))


def _rules(rules):
    return [{"id": r["id"], "params": json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]}
            for r in rules]


def _common_prefix(seqs):
    first = seqs[0]
    n = 0
    while all(len(s) > n and s[n] == first[n] for s in seqs):
        n += 1
    return first[:n]


def _shuffle_partners(manifestos: dict) -> dict:
    """For each manifesto, another one to borrow an adapter from: rules as different as possible (fixed order)."""
    keys = sorted(manifestos)
    out = {}
    for i, k in enumerate(keys):
        mine = set(manifestos[k]["families"])
        others = keys[i + 1 :] + keys[:i]
        if not others:
            out[k] = k
            continue
        out[k] = min(others, key=lambda o: (len(mine & set(manifestos[o]["families"])), others.index(o)))
    return out


def select_refusal_items(dd, splits, cfg, train_pids) -> list:
    """Harmful and benign-neighbour prompts, each under a manifesto with the refusal rule.

    Test records whose manifesto has ``refuse_harm`` come first; the rest are held-out bank prompts of those kinds
    under the same manifestos (or, when the data has none, a refusal manifesto written from the rule's phrasing).
    """
    import random

    from hyperlora.data_gen.prompts import prompt_bank

    items, values = [], {}
    for s in splits:
        for rec in dd[s]:
            if "refuse_harm" in rec["family_ids"]:
                values.setdefault(rec["manifesto"], list(rec["rules"]))
                if rec["prompt_kind"] in ("harmful", "benign_neighbor"):
                    items.append({"manifesto": rec["manifesto"], "rules": list(rec["rules"]),
                                  "prompt": [dict(m) for m in rec["prompt"]], "kind": rec["prompt_kind"]})
    chosen = list(values)[: cfg["refusal_manifestos"]]
    if not chosen:
        from hyperlora.data_gen.manifestos import RuleChoice, render_manifesto

        text = render_manifesto([RuleChoice("refuse_harm", {}, 0)], "bullets", random.Random(0), n_filler=2)
        values[text] = [{"id": "refuse_harm", "params": "{}"}]
        chosen = [text]
    items = [it for it in items if it["manifesto"] in chosen]
    out = []
    used = {json.dumps(it["prompt"]) for it in items}
    rng = random.Random("refusal")
    for kind in ("harmful", "benign_neighbor"):
        mine = [it for it in items if it["kind"] == kind][: cfg["n_refusal"]]
        pool = [p for p in prompt_bank() if p.kind == kind and p.id not in train_pids
                and json.dumps(p.as_messages()) not in used]
        if len(pool) < cfg["n_refusal"]:  # a small dataset holds few prompts out: use any bank prompt
            pool += [p for p in prompt_bank() if p.kind == kind and p not in pool]
        rng.shuffle(pool)
        for j, p in enumerate(pool[: cfg["n_refusal"] - len(mine)]):
            m = chosen[j % len(chosen)]
            mine.append({"manifesto": m, "rules": values[m], "prompt": p.as_messages(), "kind": kind})
        out += mine
    return out


def _latency(model, tok, case, manifestos, adapters, prefixes, cfg, eos_ids, pad, rows_for) -> dict:
    """Milliseconds per generated token at batch 1 (median of repeats), and the first-token time."""
    import statistics

    from hyperlora.decode import decode

    from .controls import Merged

    mk = _key(case.manifesto)
    n = cfg["latency_tokens"]

    def timed(row, tokens, merged=None):
        best = []
        for _ in range(cfg["latency_repeats"]):
            ctx = Merged(model, adapters[merged]) if merged else _Null()
            with ctx:
                t0 = time.perf_counter()
                decode(model, [row], adapters, prefixes, max_new_tokens=tokens, eos_ids=(), pad_id=pad)
                best.append((time.perf_counter() - t0) * 1000)
        return statistics.median(best)

    modes = {
        "base": (rows_for("base", case.prompt, mk), None),
        "system_prompt": (rows_for("system_prompt", case.prompt, mk), None),
        "kv_prefix": (rows_for("kv_prefix", case.prompt, mk), None),
        "adapter_unmerged": (rows_for("adapter", case.prompt, mk), None),
        "adapter_merged": (rows_for("base", case.prompt, mk), f"gen:{mk}"),
    }
    out = {}
    for name, (row, merged) in modes.items():
        first = timed(row, 1, merged)
        total = timed(row, n, merged)
        out[name] = {"ms_per_token": (total - first) / max(1, n - 1), "first_token_ms": first,
                     "context_tokens": len(row.ids) - (len(prefixes[row.prefix]["ids"]) if row.prefix else 0),
                     "tokens": n}
    out["note"] = (f"batch 1, {n} tokens, median of {cfg['latency_repeats']} run(s); ms_per_token excludes the "
                   "first token (prefill); kv_prefix prefills only the tokens after the cached system turn")
    return out


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def format_summary(results: dict) -> str:
    """A short table for the terminal: pass rate (95% CI), KL, QA, refusal per condition, and the key costs.

    Args:
        results: what ``run_eval`` returned (or ``results.json`` loaded).
    """
    from .stats import fmt

    lines = []
    meta = results.get("meta", {})
    if meta.get("checkpoint_untrained"):
        lines.append("NOTE: the checkpoint is untrained (every generated ΔW is 0): adapter rows equal the base.")
    lines.append(f"{meta.get('n_cases', '?')} cases, splits {', '.join(meta.get('splits', []))}"
                 f"{' (quick)' if meta.get('quick') else ''}")
    head = (f"{'condition':<23}{'pass % [95% CI]':>22}{'n':>5}{'KL':>8}{'QA %':>7}{'harm ref %':>11}"
            f"{'benign ref %':>13}")
    lines += [head, "-" * len(head)]
    for cond in results["conditions"]:
        pr = results["pass_rate"][cond]["all"]
        kl = results["kl_to_system"][cond]["value"]
        qa = results["capability"][cond]["qa_accuracy"]["value"]
        rh = results["refusal_harmful"][cond]["value"]
        rb = results["refusal_benign"][cond]["value"]
        lines.append(f"{cond:<23}{fmt(pr):>22}{pr['n']:>5}{_num(kl, 3):>8}{_pct(qa):>7}{_pct(rh):>11}{_pct(rb):>13}")
    d = results["adapter_minus_system_prompt"]["all"]
    lines.append(f"adapter - system_prompt: {fmt(d)} points (paired, n={d['n']})")
    lat = results["latency_ms_per_token"]
    lines.append(f"tokens saved/request {results['tokens_saved']['value']:.0f}; adapter generation "
                 f"{results['adapter_ms']['value']:.0f} ms; ms/token: adapter merged "
                 f"{lat['adapter_merged']['ms_per_token']:.0f}, unmerged {lat['adapter_unmerged']['ms_per_token']:.0f}"
                 f", system prompt {lat['system_prompt']['ms_per_token']:.0f}")
    return "\n".join(lines)


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.0f}"


def _num(x, d):
    return "n/a" if x is None else f"{x:.{d}f}"


def parse_sets(items: list[str]) -> dict:
    """``KEY=VALUE`` preset overrides (values parsed as JSON where they can be) -> dict."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise HyperLoRAError(f"--set wants KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides
