"""Benchmark per-example LoRA linear against the bare base GEMM (the floor) and the usual baselines.

Run: .venv/bin/python scripts/bench_kernels.py          (CPU: torch paths, SmolLM2-135M widths, fp32, ~1-2 min)
     python scripts/bench_kernels.py                    (CUDA: every path at d=4096 and 4096<->14336, bf16)

Methods (W frozen everywhere, every example of the batch a distinct adapter):
    floor    F.linear alone: what a linear layer costs without LoRA
    bmm      the torch reference (hyperlora.kernels.batched_lora_linear_torch): two bmms over N, eager
    loop     PEFT's mixed batch: base GEMM for the batch, then per example x_i A_iᵀ B_iᵀ added in place (indexed)
    loop_stack  the same loop, per-example deltas stacked and added once (no in-place adds in the graph)
    compile  torch.compile of the bmm reference                       (CUDA, or --compile on CPU)
    triton   ours: hyperlora.kernels backend="triton"                 (CUDA only)

Reported per case: median time of the forward (no grad) and of forward+backward (grads into x, A, B; into x only
for the floor), overhead = t / t_floor - 1 for both, peak extra memory of forward+backward (CUDA), and the
largest relative error (norm-wise, over y, dx, dA, dB) against an fp32 reference computed from the same inputs.
Methods are timed interleaved, rotating the order every repetition, so load from other processes on a shared
machine spreads over all of them instead of biasing one. Prints a table, appends one CSV row per (case, method)
to scripts/results/bench_kernels_<device-slug>.csv, and ends with one JSON line.
"""

import argparse
import datetime as dt
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import append_csv, device_name, slug

from hyperlora.kernels import batched_lora_linear, batched_lora_linear_torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "scripts" / "results"
SCALING = 2.0

# (d_in, d_out): attention-square and both MLP directions of the models the shapes come from
GPU_DIMS = [(4096, 4096), (4096, 14336), (14336, 4096)]  # Llama-3-8B-like
CPU_DIMS = [(576, 576), (576, 1536), (1536, 576)]  # SmolLM2-135M, the default base model
GPU_BATCHES = [(8, 512), (16, 512), (4, 2048), (64, 128)]  # (N, L): N sequences of L tokens
CPU_BATCHES = [(16, 128)]
GPU_RANKS, CPU_RANKS = [8, 16, 64], [8]


def peft_style_loop(x, weight, lora_A, lora_B, scaling, bias=None):
    """PEFT's mixed-adapter batch (``LoraLayer._mixed_batch_forward``): one base GEMM, then per adapter a gather
    of its rows, a small LoRA matmul pair, and an in-place indexed add into the result."""
    y = F.linear(x, weight, bias)  # (N, T, out)
    for i in range(x.shape[0]):
        rows = [i]  # PEFT indexes with a list of the batch rows that use this adapter
        y[rows] += scaling * (x[rows] @ lora_A[i].T) @ lora_B[i].T  # (1, T, r) @ (r, out)
    return y


def loop_stack(x, weight, lora_A, lora_B, scaling, bias=None):
    """The same per-example loop without in-place adds (their backward copies the whole dY once per example):
    the best case for looping over examples."""
    y = F.linear(x, weight, bias)  # (N, T, out)
    return y + scaling * torch.stack([(x[i] @ lora_A[i].T) @ lora_B[i].T for i in range(x.shape[0])])


def floor(x, weight, lora_A, lora_B, scaling, bias=None):
    return F.linear(x, weight, bias)


def triton_lora(x, weight, lora_A, lora_B, scaling, bias=None):
    return batched_lora_linear(x, weight, lora_A, lora_B, scaling, bias, backend="triton")


def make_case(n, t, d_in, d_out, r, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, d_in, generator=g)  # (N, T, in)
    w = torch.randn(d_out, d_in, generator=g) / d_in**0.5  # (out, in)
    a = torch.randn(n, r, d_in, generator=g) / d_in**0.5  # (N, r, in)
    b = torch.randn(n, d_out, r, generator=g) / r**0.5  # (N, out, r): trained-adapter scale, not the zero init
    gy = torch.randn(n, t, d_out, generator=g)  # (N, T, out)
    return [v.to(device=device, dtype=dtype) for v in (x, w, a, b, gy)]


def rel_err(got, ref):
    return ((got.double() - ref.double()).norm() / ref.double().norm()).item()


def error_vs_fp32(fn, x, w, a, b, gy):
    """Largest norm-wise relative error of y and the grads against fp32 bmm on the same (rounded) inputs."""
    outs = []
    for f, cast in ((fn, lambda v: v), (batched_lora_linear_torch, lambda v: v.float())):
        xs, as_, bs = (cast(v).detach().requires_grad_() for v in (x, a, b))
        y = f(xs, cast(w), as_, bs, SCALING)
        outs.append([y.detach(), *torch.autograd.grad(y, (xs, as_, bs), cast(gy))])
    return max(rel_err(got, ref) for got, ref in zip(*outs, strict=True))


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, fn) -> float:
        """One timed call in ms."""
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3


def time_interleaved(timer, fns: dict, warmup: int, reps: int) -> dict:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    timer.sync()
    names, samples = list(fns), {name: [] for name in fns}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            samples[name].append(timer(fns[name]))
    return {name: statistics.median(v) for name, v in samples.items()}


def peak_extra_mb(fn, device) -> float | None:
    if device.type != "cuda":
        return None  # CPU allocations are not tracked by torch
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def bench_case(methods, n, t, d_in, d_out, r, dtype, device, timer, warmup, reps):
    x, w, a, b, gy = make_case(n, t, d_in, d_out, r, dtype, device)
    xg, ag, bg = (v.detach().requires_grad_() for v in (x, a, b))

    def fwd(fn):
        def run():
            with torch.no_grad():
                fn(x, w, a, b, SCALING)

        return run

    def fwd_bwd(fn):
        inputs = (xg,) if fn is floor else (xg, ag, bg)  # the floor has no adapter to train

        def run():
            torch.autograd.grad(fn(xg, w, ag, bg, SCALING), inputs, gy)

        return run

    t_fwd = time_interleaved(timer, {m: fwd(fn) for m, fn in methods.items()}, warmup, reps)
    t_fb = time_interleaved(timer, {m: fwd_bwd(fn) for m, fn in methods.items()}, warmup, reps)
    rows = []
    for m, fn in methods.items():
        rows.append(
            dict(
                method=m,
                d_in=d_in,
                d_out=d_out,
                n=n,
                t=t,
                r=r,
                fwd_ms=t_fwd[m],
                fwdbwd_ms=t_fb[m],
                fwd_overhead=t_fwd[m] / t_fwd["floor"] - 1,
                fwdbwd_overhead=t_fb[m] / t_fb["floor"] - 1,
                peak_mem_mb=peak_extra_mb(fwd_bwd(fn), device),
                max_rel_err=None if fn is floor else error_vs_fp32(fn, x, w, a, b, gy),
            )  # fmt: skip
        )
    return rows








def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(rows):
    head = f"{'d_in':>6} {'d_out':>6} {'N':>4} {'L':>5} {'r':>3}  {'method':<10} {'fwd ms':>9} {'fwd ovh':>8} "
    head += f"{'f+b ms':>9} {'f+b ovh':>8} {'mem MB':>8} {'rel err':>8}"
    print(head)
    print("-" * len(head))
    for row in rows:
        print(
            f"{row['d_in']:>6} {row['d_out']:>6} {row['n']:>4} {row['t']:>5} {row['r']:>3}  {row['method']:<10} "
            f"{row['fwd_ms']:>9.3f} {row['fwd_overhead']:>+8.1%} {row['fwdbwd_ms']:>9.3f} "
            f"{row['fwdbwd_overhead']:>+8.1%} {fmt(row['peak_mem_mb'], '8.1f'):>8} "
            f"{fmt(row['max_rel_err'], '8.1e'):>8}"
        )


def geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def ratio(rows, num, den, key, **where):
    """Geometric mean over cases of t[num] / t[den] (e.g. loop over bmm), restricted by `where`."""
    by_case = {}
    for row in rows:
        if all(row[k] == v for k, v in where.items()):
            by_case.setdefault((row["d_in"], row["d_out"], row["n"], row["t"], row["r"]), {})[row["method"]] = row
    return geomean(c[num][key] / c[den][key] for c in by_case.values() if num in c and den in c)


def summarize(rows, methods, meta) -> dict:
    """The JSON line: geometric means over cases of fwd+bwd time ratios and overheads."""
    summary = dict(
        bench="bench_kernels", **meta, cases=len(rows) // len(methods),
        loop_over_bmm_fwdbwd_n16=ratio(rows, "loop", "bmm", "fwdbwd_ms", n=16),
        loop_over_bmm_fwdbwd=ratio(rows, "loop", "bmm", "fwdbwd_ms"),
        loop_stack_over_bmm_fwdbwd_n16=ratio(rows, "loop_stack", "bmm", "fwdbwd_ms", n=16),
        fwdbwd_overhead={m: geomean(1 + r["fwdbwd_overhead"] for r in rows if r["method"] == m) - 1
                         for m in methods if m != "floor"},
        fwd_overhead={m: geomean(1 + r["fwd_overhead"] for r in rows if r["method"] == m) - 1
                      for m in methods if m != "floor"},
    )  # fmt: skip
    if "triton" in methods:
        summary["bmm_over_triton_fwdbwd"] = ratio(rows, "bmm", "triton", "fwdbwd_ms")
        # the target: <= 12% fwd+bwd overhead at >= 8K tokens and r <= 16
        big = [
            r["fwdbwd_overhead"] for r in rows if r["method"] == "triton" and r["n"] * r["t"] >= 8192 and r["r"] <= 16
        ]
        summary["triton_fwdbwd_overhead_max_tokens_ge_8k_r_le_16"] = max(big, default=None)
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--ranks", type=int, nargs="+", help="default: 8 16 64 on CUDA, 8 on CPU")
    p.add_argument("--compile", action="store_true", help="also time torch.compile on CPU (slow to compile)")
    p.add_argument("--warmup", type=int, help="default: 5 on CUDA, 2 on CPU")
    p.add_argument("--reps", type=int, help="default: 20 on CUDA, 10 on CPU")
    p.add_argument("--threads", type=int, help="CPU threads; default 1 (see below)")
    p.add_argument("--out", type=Path, help="CSV path; default scripts/results/bench_kernels_<device-slug>.csv")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if not cuda:
        # On a shared, oversubscribed CPU every OpenMP region waits for a descheduled thread (~10 ms per op at
        # load 5 on 2 cores, measured), which taxes many-small-op paths like the loop far beyond their cost.
        # One thread measures the work, not the scheduler; pass --threads to override on a quiet machine.
        torch.set_num_threads(args.threads or 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        args.dtype or ("bf16" if cuda else "fp32")
    ]
    dims, batches = (GPU_DIMS, GPU_BATCHES) if cuda else (CPU_DIMS, CPU_BATCHES)
    ranks = args.ranks or (GPU_RANKS if cuda else CPU_RANKS)
    warmup, reps = args.warmup or (5 if cuda else 2), args.reps or (20 if cuda else 10)

    methods = {"floor": floor, "bmm": batched_lora_linear_torch, "loop": peft_style_loop, "loop_stack": loop_stack}
    if cuda or args.compile:
        # Shapes change every case: with dynamic=False each one is a recompile, and past torch._dynamo's cache
        # limit (8) later cases would silently run eager. Dynamic shapes compile a few graphs and keep them.
        methods["compile"] = torch.compile(batched_lora_linear_torch, dynamic=True)
    if cuda:
        methods["triton"] = triton_lora

    name = device_name(torch.get_num_threads(), device)
    out = args.out or RESULTS / f"bench_kernels_{slug(name)}.csv"
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta = dict(date=now, device=name, dtype=str(dtype).removeprefix("torch."), torch=torch.__version__)
    print(f"{name} | {meta['dtype']} | torch {torch.__version__} | warmup {warmup}, reps {reps} (median)")

    timer, rows, t0 = Timer(device), [], time.perf_counter()
    cases = [(d_in, d_out, n, t, r) for d_in, d_out in dims for n, t in batches for r in ranks]
    for k, (d_in, d_out, n, t, r) in enumerate(cases, 1):
        case = [{**meta, **row} for row in bench_case(methods, n, t, d_in, d_out, r, dtype, device, timer, warmup,
                                                      reps)]  # fmt: skip
        append_csv(case, out)  # a case at a time: a run stopped at a time limit keeps what it measured
        rows += case
        print(f"case {k}/{len(cases)} done ({d_in}x{d_out}, N={n}, L={t}, r={r}; {time.perf_counter() - t0:.0f} s)",
              flush=True)  # fmt: skip
    print_table(rows)

    summary = summarize(
        rows,
        list(methods),
        dict(
            date=now,
            device=name,
            dtype=meta["dtype"],
            csv=str(out.relative_to(REPO) if out.is_relative_to(REPO) else out),
        ),
    )
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
