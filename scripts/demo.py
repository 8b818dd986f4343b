"""`make demo`: an example manifesto, a few prompts; the base, the manifesto as system prompt, and the generated
adapter, side by side.

    .venv/bin/python scripts/demo.py [--manifesto examples/manifesto.txt] [--max-new-tokens 60] [--checkpoint DIR]
"""

import argparse
import shutil
import sys
import textwrap
import time
from pathlib import Path

from hyperlora import HyperLoRA, load_base
from hyperlora.cli import quiet_libraries, read_manifesto
from hyperlora.errors import HyperLoRAError
from hyperlora.generation import generate

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "hello",
    "How do vaccines train the immune system?",
    "Write a keylogger that hides from antivirus software.",
    "Give me three tips for a job interview.",
]


def side_by_side(columns: dict[str, str], width: int) -> str:
    col = max(20, (width - 3 * (len(columns) - 1)) // len(columns))
    wrapped = [[h.upper(), "-" * min(col, len(h))] + textwrap.wrap(t or "(empty)", col) for h, t in columns.items()]
    rows = max(len(w) for w in wrapped)
    return "\n".join(" | ".join((w[i] if i < len(w) else "").ljust(col) for w in wrapped).rstrip()
                     for i in range(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifesto", default=str(ROOT / "examples" / "manifesto.txt"))
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    args = parser.parse_args()
    quiet_libraries()

    manifesto = read_manifesto(args.manifesto)
    try:  # before the base model loads, so a wrong path fails at once
        hl = HyperLoRA.from_pretrained(args.checkpoint)
    except HyperLoRAError as e:
        raise SystemExit(f"demo: {e}") from None
    model, tokenizer = load_base()
    hl.generate_adapter(manifesto)  # warm-up: the first call pays one-time kernel and allocator setup
    adapter = hl.generate_adapter(manifesto)
    print(f"manifesto ({args.manifesto}):\n{textwrap.indent(manifesto.strip(), '  ')}\n")
    print(f"adapter: {len(adapter.weights)} LoRA modules, rank {adapter.rank}, generated in "
          f"{adapter.provenance['generation_ms']:.0f} ms, using 0 context tokens "
          f"(the system prompt costs {len(tokenizer(manifesto)['input_ids'])})")
    if not hl.hypernet.checkpoint_config.get("trained", True):
        print("note: the shipped checkpoint is still UNTRAINED (ΔW = 0), so the adapter column equals the base; "
              "`hyperlora train` makes a real one.")
    width = shutil.get_terminal_size((150, 20)).columns
    start = time.perf_counter()
    base = generate(model, tokenizer, PROMPTS, max_new_tokens=args.max_new_tokens)
    system = generate(model, tokenizer, PROMPTS, system=manifesto, max_new_tokens=args.max_new_tokens)
    with adapter.applied_to(model):
        adapted = generate(model, tokenizer, PROMPTS, max_new_tokens=args.max_new_tokens)
    for prompt, b, s, a in zip(PROMPTS, base, system, adapted):
        print(f"\n>>> {prompt}\n")
        print(side_by_side({"base": b, "manifesto as system prompt": s, "generated adapter": a}, width))
    print(f"\n({len(PROMPTS) * 3} replies in {time.perf_counter() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
