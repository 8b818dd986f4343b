"""`hyperlora <verb>`: thin commands over the library. Run `hyperlora --help` for the verbs.

Bad input (a missing or empty manifesto, a corrupt checkpoint, an existing output dir...) prints one line on
stderr and exits with status 2; nothing is left half-written.
"""

import argparse
import contextlib
import os
import sys
import types
from pathlib import Path

from .errors import HyperLoRAError

EXAMPLES = """examples:
  hyperlora generate-adapter --manifesto examples/manifesto.txt --out out/kind-adapter
  echo "Answer in lowercase." | hyperlora generate-adapter --manifesto - --out out/lower --strength 1.5
  hyperlora generate --prompt "How do vaccines work?" --adapter out/kind-adapter
  hyperlora generate --prompt "How do vaccines work?" --system "$(cat examples/manifesto.txt)"
  hyperlora compose out/kind-adapter out/lower --weights 1 0.5 --rank 16 --out out/kind-lower
  hyperlora studio                  # the server and its page: write, look, rewrite, stack
"""


def quiet_libraries():
    """Silence transformers' loaders: their progress bars and warnings drown the one line a user wants to read."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def read_manifesto(source: str) -> str:
    """Read a manifesto from a file path or '-' (stdin) as UTF-8; refuse empty text."""
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except FileNotFoundError as e:
        raise HyperLoRAError(f"manifesto file not found: {source}") from e
    except IsADirectoryError as e:
        raise HyperLoRAError(f"manifesto path is a directory: {source}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HyperLoRAError(f"manifesto {source} is not UTF-8 text (byte {e.start}: {raw[e.start]:#x})") from e
    if not text.strip():
        raise HyperLoRAError(f"manifesto {source} is empty")
    return text


def cmd_generate_adapter(args):
    text = read_manifesto(args.manifesto)
    out = Path(args.out)
    if out.exists() and not args.force:  # checked before any model loads, so the refusal is instant
        raise HyperLoRAError(f"{out} already exists (use --force to replace it)")
    if args.rank is not None and args.rank < 1:
        raise HyperLoRAError(f"--rank must be at least 1, got {args.rank}")
    from .adapter import Adapter
    from .generator import HyperLoRA

    hl = HyperLoRA.from_pretrained(args.checkpoint, base=args.base)
    adapter = hl.generate_adapter(text, strength=args.strength)
    note = ""
    if args.rank is not None and args.rank < adapter.rank:  # a per-statement adapter's rank grows with statements
        summed, truncated = adapter.rank, Adapter.compose([adapter], rank=args.rank)
        error = truncated.provenance["truncation_error"]
        truncated.provenance = {**adapter.provenance, "summed_rank": summed, "truncation_error": error}
        adapter, note = truncated, f", truncated by SVD from rank {summed}: relative ΔW error {error:.3f}"
    adapter.save(out, force=args.force)
    print(f"wrote {out} ({len(adapter.weights)} LoRA modules, rank {adapter.rank}{note}) "
          f"in {adapter.provenance['generation_ms']:.0f} ms")


def cmd_generate(args):
    from .adapter import Adapter
    from .base import DEFAULT_BASE, load_base
    from .generation import generate

    if args.max_new_tokens < 1:
        raise HyperLoRAError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if not 0 <= args.temperature <= 5:
        raise HyperLoRAError(f"--temperature must be within [0, 5], got {args.temperature}")
    from .modes import parse_bans

    parse_bans(args.ban)  # a bad rule is one line here, before any model loads
    if args.guard:  # checked before any model loads: a blocked prompt costs a millisecond, not a model load
        from . import guard

        verdict = guard.check_prompt(args.prompt)
        if not verdict.allowed:
            print(guard.refusal(verdict))
            print(f"hyperlora: guard: prompt blocked: {verdict.reason}", file=sys.stderr)
            return
    adapter = Adapter.load(args.adapter) if args.adapter else None
    model, tokenizer = load_base(args.base or (adapter and adapter.base_model) or DEFAULT_BASE)
    mode_rules = None
    if args.ban:
        from .modes import ModeRules

        mode_rules = ModeRules(tokenizer, ban=args.ban)
    with adapter.applied_to(model) if adapter else contextlib.nullcontext():
        reply = generate(model, tokenizer, [args.prompt], system=args.system, max_new_tokens=args.max_new_tokens,
                         do_sample=args.temperature > 0, temperature=args.temperature or 1.0, seed=args.seed,
                         mode_rules=mode_rules)[0]
    if args.guard:
        checks = make_guard()
        verdict = checks.check_answer(reply, "\n".join(t for t in ((adapter.manifesto if adapter else ""),
                                                                    args.system or "") if t))
        if not verdict.allowed:
            print(checks.withheld)
            print(f"hyperlora: guard: answer withheld: {verdict.reason}", file=sys.stderr)
            return
    print(reply)


def cmd_guard(args):
    if (args.prompt is None) == (args.answer is None):
        raise HyperLoRAError("give exactly one of --prompt TEXT or --answer TEXT")
    text = args.prompt if args.prompt is not None else args.answer
    if not text.strip():
        raise HyperLoRAError(f"--{'prompt' if args.prompt is not None else 'answer'} is empty: nothing to check")
    from . import guard

    verdict = guard.check_prompt(text) if args.prompt is not None else guard.check_answer(text)
    print(verdict.to_json())


def cmd_compose(args):
    from .adapter import Adapter

    out = Path(args.out)
    if out.exists() and not args.force:  # checked before anything loads, so the refusal is instant
        raise HyperLoRAError(f"{out} already exists (use --force to replace it)")
    parts = [Adapter.load(path) for path in args.adapters]
    adapter = Adapter.compose(parts, weights=args.weights, rank=args.rank)
    adapter.save(out, force=args.force)
    line = f"wrote {out} ({len(parts)} adapters, {len(adapter.weights)} LoRA modules, rank {adapter.rank})"
    summed, error = adapter.provenance["summed_rank"], adapter.provenance["truncation_error"]
    if adapter.rank < summed:
        line += f"; truncated from rank {summed}: truncation error {error:.1%} of ||ΔW||"
    print(line)


def cmd_data_generate(args):
    from .data_gen.generate import format_summary, generate_dataset

    try:
        summary = generate_dataset(args.out, seed=args.seed, n_manifestos=args.n_manifestos, overwrite=args.force,
                                   minimal_pairs=args.minimal_pairs)
    except ValueError as e:  # data_gen reports bad arguments as ValueError; it does not import the core's errors
        raise HyperLoRAError(str(e)) from e
    print(format_summary(summary))


def cmd_data_modes(args):
    from .data_gen.modes import format_summary, write_modes_corpus

    try:
        summary = write_modes_corpus(args.out, seed=args.seed, n=args.n, rosy_dir=args.rosy, overwrite=args.force)
    except ValueError as e:  # data_gen reports bad arguments as ValueError; it does not import the core's errors
        raise HyperLoRAError(str(e)) from e
    print(format_summary(summary))


def cmd_rosy_run(args):
    from .data_gen.rosy.pipeline import format_summary, run_pipeline

    rewrite = None if args.no_rewrite else args.rewrite
    stats = run_pipeline(args.input, args.out, fmt=args.format, limit=args.limit, rewrite=rewrite,
                         executor=args.executor, force=args.force, threshold=args.threshold,
                         max_new_tokens=args.max_new_tokens, min_similarity=args.min_similarity,
                         progress=not args.quiet, export_modes=args.export == "modes")
    print(format_summary(stats))
    extra = ", modes.jsonl" if args.export == "modes" else ""
    print(f"wrote {args.out}/documents.parquet{extra}, stats.json, report.md and clusters.png")


def cmd_eval(args):
    from .evals.run import format_summary, parse_sets, run_eval

    overrides = parse_sets(args.set)
    results = run_eval(args.out, args.checkpoint, args.split, args.quick, args.data, args.seeds, reader=args.reader,
                       fresh=args.fresh, **overrides)
    print(format_summary(results))
    print(f"wrote {args.out}/results.json, report.md and plots")


def cmd_train(args):
    from .train import main as train_main

    final = train_main(args.config, args.overrides)
    print(f"wrote {final}")


def make_guard():
    """The guard behind `generate --guard` and a served request's ``"guard": true``: ``hyperlora.guard``, its answer
    check told the manifesto's rules, read by hyperlora.data_gen when it is there (a manifesto that asks for
    capitals makes an all-capital reply right, not shouting). The CLI injects it: the server never imports either.
    """
    from . import guard

    try:
        from .data_gen.detect import detect_rules
    except ImportError:
        detect_rules = None

    def check_answer(reply: str, manifesto: str = ""):
        rules = detect_rules(manifesto) if detect_rules is not None and manifesto.strip() else []
        return guard.check_answer(reply, rules=rules)

    return types.SimpleNamespace(check_prompt=guard.check_prompt, check_answer=check_answer,
                                 refusal=guard.refusal, withheld=guard.WITHHELD)


def make_verifier():
    """The rule verifier behind the server's /v1/verify, from hyperlora.data_gen when it is there (else None).

    The CLI injects it: the server is core and never imports data_gen itself.
    """
    try:
        from .data_gen.detect import make_verifier as make
    except ImportError:
        return None
    return make()


def _stop_on_signals():
    """Ctrl-C and SIGTERM (a service manager's stop) both end serving cleanly, even when the parent process
    started this one with SIGINT ignored (which Python would otherwise keep)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def cmd_serve(args, open_page: bool = False):
    from .serve import Server

    server = Server(checkpoint=args.checkpoint, base=args.base, host=args.host, port=args.port,
                    adapters_dir=args.adapters_dir, max_batch=args.max_batch, max_queue=args.max_queue,
                    verifier=make_verifier(), guard=make_guard())
    port = server.start()
    url = f"http://{args.host}:{port}"
    print(f"hyperlora: serving {url} (base {server.base_name}, checkpoint {server.checkpoint})", flush=True)
    if open_page:
        import webbrowser

        local = args.host in ("0.0.0.0", "::", "")  # listening everywhere: this machine's browser uses loopback
        webbrowser.open(f"http://127.0.0.1:{port}/" if local else f"{url}/")
    _stop_on_signals()
    try:
        server.wait()
    except KeyboardInterrupt:
        print("hyperlora: stopped", file=sys.stderr)
    finally:
        server.stop()


def cmd_studio(args):
    cmd_serve(args, open_page=not args.no_open)


def _serve_options(p):
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--checkpoint", metavar="DIR", help="hypernetwork checkpoint (default: the shipped one)")
    p.add_argument("--base", metavar="NAME", help="base model (default: the checkpoint's)")
    p.add_argument("--adapters-dir", metavar="DIR", help="where named adapters are saved and loaded from at start")
    p.add_argument("--max-batch", type=int, default=8, metavar="N", help="most requests decoded together (default 8)")
    p.add_argument("--max-queue", type=int, default=32, metavar="N",
                   help="most requests waiting; beyond it 503 with Retry-After (default 32)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperlora",
        description="Turn an alignment prompt (a manifesto) into LoRA weights for a base LM, in one forward pass.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser(
        "generate-adapter",
        help="manifesto -> PEFT LoRA adapter directory",
        description="Generate a LoRA adapter from a manifesto and save it as a standard PEFT directory "
        "(adapter_config.json, adapter_model.safetensors, manifesto.txt, hyperlora.json).",
    )
    p.add_argument("--manifesto", required=True, metavar="FILE|-", help="UTF-8 text file, or - for stdin")
    p.add_argument("--out", required=True, metavar="DIR", help="adapter directory to write")
    p.add_argument("--checkpoint", metavar="DIR", help="hypernetwork checkpoint (default: the shipped one)")
    p.add_argument("--base", metavar="NAME", help="base model the adapter is for; refuses a checkpoint for another")
    p.add_argument("--strength", type=float, default=1.0, metavar="F", help="LoRA scale multiplier (default 1.0)")
    p.add_argument("--rank", type=int, metavar="R",
                   help="truncate to at most this rank by SVD (a per-statement checkpoint's adapters have rank "
                   "r × (statements + 1)); prints the relative ΔW error it cost")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_generate_adapter)

    p = verbs.add_parser(
        "generate",
        help="reply to a prompt with the base model, optionally with an adapter or system prompt",
        description="Generate a reply (greedy) with the base model, an adapter applied, or a system prompt.",
    )
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the user's message")
    p.add_argument("--adapter", metavar="DIR", help="PEFT adapter directory to apply")
    p.add_argument("--system", metavar="TEXT", help="system prompt (e.g. the manifesto, for comparison)")
    p.add_argument("--base", metavar="NAME", help="base model (default: the adapter's, else smollm2-135m-instruct)")
    p.add_argument("--max-new-tokens", type=int, default=128, metavar="N", help="reply length cap (default 128)")
    p.add_argument("--guard", action="store_true",
                   help="check the prompt first (a blocked one gets a kind refusal and its reason, no model load) and "
                   "the reply after (hostile or degenerate replies are withheld, with the reason)")
    p.add_argument("--temperature", type=float, default=0.0, metavar="T",
                   help="sampling temperature (default 0: greedy)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed for sampling")
    p.add_argument("--ban", action="append", default=[], metavar="RULE",
                   help="tagged modes (<human>…</human>, <ai>…</ai>): 'human' never opens a human span, 'ai>human' "
                   "never one directly inside an aligned span; enforced token by token, unclosed tags closed at the "
                   "end (repeatable)")
    p.set_defaults(func=cmd_generate)

    p = verbs.add_parser(
        "guard",
        help="classical guardrails: check a prompt's intent or an answer's tone (milliseconds, no model)",
        description="Check one text and print one JSON line {allowed, category, score, reason}: --prompt runs the "
        "intent classifier (harmful-ask areas against benign asks), --answer the hostility and degenerate-reply "
        "checks. Thresholds: hyperlora/guard_assets/thresholds.json.",
    )
    p.add_argument("--prompt", metavar="TEXT", help="a user's message to classify")
    p.add_argument("--answer", metavar="TEXT", help="a model's reply to check")
    p.set_defaults(func=cmd_guard)

    p = verbs.add_parser(
        "compose",
        help="stack saved adapters into one PEFT adapter (ΔWs add, each with its weight)",
        description="Compose saved adapters into one LoRA whose ΔW is the weighted sum of theirs: ranks are "
        "concatenated (each part keeps its own strength), or SVD-truncated to --rank with the relative error "
        "printed. The result loads with plain PeftModel.from_pretrained.",
    )
    p.add_argument("adapters", nargs="+", metavar="DIR", help="adapter directories to stack")
    p.add_argument("--out", required=True, metavar="DIR", help="adapter directory to write")
    p.add_argument("--weights", type=float, nargs="+", metavar="W", help="one weight per adapter (default 1 each)")
    p.add_argument("--rank", type=int, metavar="R", help="truncate to this rank by SVD (default: the summed rank)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_compose)

    p = verbs.add_parser("data", help="synthetic manifesto -> behaviour data", description="Synthetic data.")
    data_verbs = p.add_subparsers(dest="data_verb", metavar="VERB", required=True)
    p = data_verbs.add_parser(
        "generate",
        help="write the manifesto -> behaviour dataset (train / test_paraphrase / test_combination / test_family)",
        description="Generate the synthetic dataset: manifestos of 1-4 rules from 30+ families, prompts, compliant "
        "targets checked by the rule verifiers, and held-out splits. Deterministic per seed.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory (HF datasets save_to_disk)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--n-manifestos", type=int, default=None, metavar="N", help="manifestos over all splits")
    p.add_argument("--minimal-pairs", action="store_true",
                   help="also give each training manifesto a twin with one rule changed (other words, the opposite "
                   "rule, or the rule left out) that answers the same prompts, so a hypernetwork must read that rule "
                   "to fit both; the other records stay as without it (train with minimal_pairs=true)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_data_generate)
    p = data_verbs.add_parser(
        "modes",
        help="write the two-mode corpus: <ai> replies that quote people as <human>, plain <ai> answers, "
        "<human> text",
        description="Write chat records for conditional training on two tagged modes (seed 002, Korbak et al. "
        "2023): (a) a user reports what someone said (rude, sarcastic, angry, dismissive, selfish, kind, worried "
        "lines) and the reply is the aligned voice commenting kindly, the quoted words inside <human> tags inside "
        "<ai>; (b) prompt-bank asks answered in <ai> tags (the value rules applied); (c) asks to write as a person "
        "would, answered in <human> tags; with --rosy, the rosy run's documents (<human>) and rewrites (<ai>) too. "
        "Every record's tags are checked (well-formed, one span of its mode, every quotation in an <ai> reply "
        "tagged <human>) and drops are counted by reason. Each record carries prompt, response, mode, kind, "
        "split, source, generator_version and date. Deterministic per seed (except the date); the test split "
        "draws from held-out lines and prompts, the same whatever the seed. Does not touch `data generate`'s "
        "dataset.",
        epilog="writes DIR/train.jsonl, DIR/test.jsonl, DIR/dropped.jsonl (each with its reason) and "
        "DIR/summary.json, all at once. Train a LoRA on it: scripts/train_modes.py --data DIR --out ADAPTER; "
        "evaluate: scripts/eval_modes.py --data DIR --adapter ADAPTER --out EVAL.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="corpus directory to write")
    p.add_argument("--rosy", metavar="DIR",
                   help="a `hyperlora rosy run ... --export modes` output directory (its modes.jsonl joins the mix)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--n", type=int, default=2000, metavar="N",
                   help="records over both splits, 15%% of them test (default 2000)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_data_modes)

    p = verbs.add_parser("rosy", help="the rosy dataset pipeline", description="The rosy dataset pipeline.")
    rosy_verbs = p.add_subparsers(dest="rosy_verb", metavar="VERB", required=True)
    p = rosy_verbs.add_parser(
        "run",
        help="score documents for rosiness, keep the kind-world ones, rewrite or drop the rest, report",
        description="Score every document with the rosiness classifier (a logistic head on MiniLM embeddings); "
        "keep those at or above its threshold; rewrite the others towards a kind world (or drop them with "
        "--no-rewrite); cluster what was filtered. Writes DIR/documents.parquet (every input document with its "
        "route kept/rewritten/dropped and the reason), stats.json, report.md and clusters.png, all at once. "
        "Malformed lines, non-UTF-8 bytes, empty and huge documents are dropped with a reason and counted, never "
        "fatal. An interrupted run resumes where it stopped when given the same command.",
        epilog="inputs: .jsonl (objects with 'text', optional 'id' and 'metadata'), .parquet ('text' column), "
        ".txt (one document per line), fortune files (--format fortune: entries separated by '%' lines), a saved "
        "Hugging Face dataset directory (DIR, or DIR:SPLIT for a DatasetDict). Directories expand to their files.",
    )
    p.add_argument("--input", required=True, nargs="+", metavar="PATH", help="input file(s) or directories")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--no-rewrite", action="store_true", help="drop filtered documents instead of rewriting them")
    p.add_argument("--limit", type=int, metavar="N", help="read only the first N input documents")
    p.add_argument("--rewrite", default="instruct", choices=("instruct", "adapter", "plain", "upsample"),
                   help="instruct: the base LM told about the kind world; adapter: the base LM with an adapter "
                   "generated from a utopia manifesto; plain: a neutral rewrite (control); upsample: a kept "
                   "document from the nearest rosy cluster instead (default instruct)")
    p.add_argument("--format", default="auto", choices=("auto", "jsonl", "parquet", "text", "fortune", "hf"),
                   help="input format (default: by file suffix; unknown suffixes read as text)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local (resumable shards) or ray (needs the [ray] extra; default local)")
    p.add_argument("--threshold", type=float, metavar="T", help="rosiness cut (default: the classifier's own)")
    p.add_argument("--max-new-tokens", type=int, default=96, metavar="N", help="rewrite length cap (default 96)")
    p.add_argument("--min-similarity", type=float, default=0.3, metavar="S",
                   help="an LM rewrite less similar than this to its original (embedding cosine) is dropped as off "
                   "topic (default 0.3)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--export", choices=("modes",),
                   help="modes: also write modes.jsonl, a conditional-training corpus: each document as it was in "
                   "<human>…</human>, each rewrite in <ai>…</ai>, with its source")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_rosy_run)

    p = verbs.add_parser(
        "eval",
        help="the generated adapter against the system prompt, a per-manifesto LoRA, a KV prefix and controls",
        description="Evaluate a checkpoint on the held-out splits: conditions base, system_prompt, "
        "system_prompt_example, adapter, adapter_system_prompt, oracle_lora, kv_prefix, prompt_tuned (the "
        "manifesto read by a manifesto-reader LoRA) and the controls shuffled, empty, random, multitask; strict rule "
        "pass rate, KL to the system-prompted model, capability, refusal, degenerate replies, the hello probe and "
        "costs, with paired bootstrap CIs. Writes DIR/results.json, report.md and plots.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--checkpoint", metavar="DIR", help="hypernetwork checkpoint (default: the shipped one)")
    p.add_argument("--split", metavar="NAME", help="test_paraphrase, test_combination or test_family (default: all)")
    p.add_argument("--quick", action="store_true", help="a small subset (a few minutes on 2 CPU cores)")
    p.add_argument("--data", metavar="DIR", help="dataset from `hyperlora data generate` (default: seed 0, cached)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="sampling seeds (default 3)")
    p.add_argument("--reader", metavar="DIR", help="the prompt_tuned condition's manifesto-reader LoRA, saved by "
                   "scripts/train_reader.py, instead of training it in the eval (saves ~19 min of the full eval)")
    p.add_argument("--fresh", action="store_true", help="recompute the baselines (base, system prompt, KV prefix, "
                   "oracle, reader and multitask LoRAs) instead of reading them from the eval memo, which keeps them "
                   "between runs of the same data, settings and code (about half of a full eval)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    p.set_defaults(func=cmd_eval)

    p = verbs.add_parser(
        "train",
        help="train the hypernetwork from a YAML recipe (resumes a stopped run)",
        description="Train the hypernetwork. Recipes live in hyperlora/configs/*.yaml; any field can be "
        "overridden as key=value (nested: hypernet.rank=16). Re-running the same command after a stop resumes "
        "from the run's last save with the same data order.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="YAML recipe, e.g. hyperlora/configs/cpu.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser(
        "serve",
        help="HTTP chat API: each request brings a manifesto or an adapter name; different ones decode in one batch",
        description="Serve an OpenAI-style chat API (POST /v1/chat/completions) whose requests may carry a "
        "manifesto (made into an adapter once, then cached) or a saved adapter's name; concurrent requests with "
        "different adapters decode together in one batch through per-example LoRA. Also POST/GET /v1/adapters "
        "(generate, stack, list), GET /v1/adapters/NAME/peft (PEFT zip), GET /health, and the studio page at /. "
        "Ctrl-C stops it.",
    )
    _serve_options(p)
    p.set_defaults(func=cmd_serve)

    p = verbs.add_parser(
        "studio",
        help="the server plus its page in a browser: write a manifesto, look at the replies, rewrite, stack",
        description="Start `hyperlora serve` and open its studio page (http://HOST:PORT/) in a browser.",
    )
    _serve_options(p)
    p.add_argument("--no-open", action="store_true", help="do not open a browser")
    p.set_defaults(func=cmd_studio)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    try:
        args.func(args)
    except HyperLoRAError as e:
        print(f"hyperlora: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hyperlora: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
