"""Per-example LoRA kernels against the torch reference: output and every gradient, odd shapes, one tolerance table.

Run: .venv/bin/pytest tests/test_kernels.py -q            (CPU: Triton runs interpreted, fp32, tiny shapes)
     .venv/bin/pytest tests/test_kernels.py -q -m gpu     (CUDA: bf16 kernels against an fp32 reference)
"""

import os

import torch

# The interpreter is chosen when a @triton.jit function is decorated, i.e. when hyperlora.kernels.lora_linear
# is imported, so this must come before that import. On a CUDA machine the compiled kernels run instead.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import hyperlora.kernels as K  # noqa: E402
from hyperlora.kernels import batched_lora_linear, batched_lora_linear_torch  # noqa: E402

try:
    import triton  # noqa: F401

    HAS_TRITON = True
except ImportError:
    HAS_TRITON = False

# One table: relative error ||got - ref|| / ||ref|| allowed per dtype of the kernel under test. The reference
# is always fp32 (for bf16 kernels: fp32 math on the same bf16-rounded inputs), so bf16 is never compared with
# a bf16 reference that shares its rounding.
TOLERANCES = {torch.float32: 1e-4, torch.bfloat16: 2e-2}

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
needs_triton = pytest.mark.skipif(
    not HAS_TRITON or not (CUDA or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs triton, and CUDA or TRITON_INTERPRET=1",
)


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30)).item()


def make_inputs(n, t, d_in, d_out, r, bias=True, dtype=torch.float32, device=DEVICE, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, d_in, generator=g)  # (N, T, in)
    w = torch.randn(d_out, d_in, generator=g) / d_in**0.5  # (out, in)
    b = torch.randn(d_out, generator=g) if bias else None
    a = torch.randn(n, r, d_in, generator=g) / d_in**0.5  # (N, r, in)
    bb = torch.randn(n, d_out, r, generator=g)  # (N, out, r); nonzero so dA is exercised
    gy = torch.randn(n, t, d_out, generator=g)  # (N, T, out) upstream gradient
    cast = lambda v: None if v is None else v.to(device=device, dtype=dtype)
    return cast(x), cast(w), cast(a), cast(bb), cast(b), cast(gy)


def run(backend, x, w, a, bb, b, gy, scaling):
    """Output and gradients (x, A, B) of one backend, computed in x's dtype."""
    x, a, bb = (v.detach().clone().requires_grad_() for v in (x, a, bb))
    y = batched_lora_linear(x, w, a, bb, scaling, b, backend=backend)
    gx, ga, gb = torch.autograd.grad(y, (x, a, bb), gy)
    return {"y": y.detach(), "dx": gx, "dA": ga, "dB": gb}


def check_against_reference(n, t, d_in, d_out, r, bias, dtype, scaling=0.5):
    inputs = make_inputs(n, t, d_in, d_out, r, bias=bias, dtype=dtype)
    got = run("triton", *inputs, scaling)
    ref = run("torch", *(None if v is None else v.float() for v in inputs), scaling)
    for name in ref:
        assert got[name].dtype == dtype and got[name].shape == ref[name].shape, name
        err = rel_err(got[name], ref[name])
        assert err <= TOLERANCES[dtype], f"{name}: rel. err {err:.2e} > {TOLERANCES[dtype]:.0e}"


# Odd sizes: in/out not multiples of 16; T = 7 (less than one tile) and T = 70 (a 64-row tile plus a tail).
SHAPES = [(7, 40, 24), (70, 33, 90), (37, 50, 17)]
RANKS_AND_BATCHES = [(n, r) for r in (1, 4, 8, 16, 64) for n in (1, 5)]
CASES = [(n, r, *SHAPES[i % len(SHAPES)]) for i, (n, r) in enumerate(RANKS_AND_BATCHES)]


@needs_triton
@pytest.mark.parametrize("n,r,t,d_in,d_out", CASES)
def test_matches_reference_fp32(n, r, t, d_in, d_out):
    check_against_reference(n, t, d_in, d_out, r, bias=(r % 2 == 0), dtype=torch.float32)


@needs_triton
def test_strided_inputs_and_shared_adapter():
    """Non-contiguous x and an adapter broadcast over the batch (stride 0), as LoRALinear passes it."""
    n, t, d_in, d_out, r = 3, 19, 24, 20, 8
    x, w, a, bb, b, gy = make_inputs(n, t, d_in, d_out, r)
    x = torch.randn(n, d_in, t, device=DEVICE).transpose(1, 2)  # (N, T, in), non-contiguous
    a, bb = a[:1].expand(n, -1, -1), bb[:1].expand(n, -1, -1)  # one adapter for every sequence
    got, ref = run("triton", x, w, a, bb, b, gy, 2.0), run("torch", x, w, a, bb, b, gy, 2.0)
    for name in ref:
        assert rel_err(got[name], ref[name]) <= TOLERANCES[torch.float32], name


@needs_triton
def test_segmented_launchers_small_tiles_and_splits_are_deterministic():
    """Several row tiles per example and several T splits: still exact per example and bitwise repeatable."""
    from hyperlora.kernels import lora_linear as LL

    n, t, d, r = 3, 45, 21, 5  # 45 rows = two 16-row tiles plus a tail; 3 splits of one tile each
    g = torch.Generator().manual_seed(1)
    u = torch.randn(n, t, r, generator=g).to(DEVICE)  # (N, T, r) fp32, like S or dS
    v = torch.randn(n, t, d, generator=g).to(DEVICE)  # (N, T, d)
    q = torch.randn(n, r, d, generator=g).to(DEVICE)  # (N, r, d)
    ref = torch.einsum("ntr,ntk->nrk", u, v)
    first = LL._segment_grad(u, v, 1.0, block_t=16, splits=3)
    assert rel_err(first, ref) <= TOLERANCES[torch.float32]
    assert torch.equal(first, LL._segment_grad(u, v, 1.0, block_t=16, splits=3))
    assert rel_err(LL._shrink(v, q, 0.5, block_t=16), 0.5 * v @ q.transpose(1, 2)) <= TOLERANCES[torch.float32]
    y = torch.randn(n, t, d, generator=g).to(DEVICE)
    want = y + 3.0 * u @ q
    got = LL._expand_add_(y.clone(), u, q.transpose(1, 2), 3.0, block_t=16)
    assert rel_err(got, want) <= TOLERANCES[torch.float32]


@needs_triton
def test_weight_and_bias_grads_when_requested():
    """W is frozen in LoRA training; if it is not, its grad comes from torch rather than silently None."""
    x, w, a, bb, b, gy = make_inputs(2, 9, 20, 18, 4)
    grads = {}
    for backend in ("torch", "triton"):
        w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
        y = batched_lora_linear(x, w_, a, bb, 0.5, b_, backend=backend)
        grads[backend] = torch.autograd.grad(y, (w_, b_), gy)
    for got, ref in zip(grads["triton"], grads["torch"], strict=True):
        assert rel_err(got, ref) <= TOLERANCES[torch.float32]


@needs_triton
def test_opcheck_registrations():
    """torch.library's own checks of the schema, fake implementation and autograd registration."""
    x, w, a, bb, b, _ = make_inputs(2, 9, 20, 18, 4)
    args = (x.requires_grad_(), w, a.requires_grad_(), bb.requires_grad_(), 0.5, b)
    from hyperlora.kernels import lora_linear  # noqa: F401  (registers the op)

    torch.library.opcheck(torch.ops.hyperlora.batched_lora_linear.default, args)


@needs_triton
@pytest.mark.parametrize("compile_backend", ["aot_eager", "inductor"])
def test_torch_compile_traces_through_the_op(compile_backend):
    """A small two-layer model on the op compiles in one graph; output and grads equal eager.

    aot_eager checks the fake implementations and the autograd formula; inductor (~15 s on 2 CPU cores) is what
    training runs. The kernels stay opaque custom ops in the graph either way."""
    torch._dynamo.reset()
    n, t, d, h, r = 2, 11, 20, 36, 4
    x, w1, a1, b1, bias1, _ = make_inputs(n, t, d, h, r, seed=2)
    _, w2, a2, b2, bias2, _ = make_inputs(n, t, h, d, r, seed=3)

    x = x.transpose(1, 2).contiguous()  # (N, in, T): the model reads it transposed, a non-contiguous input
    a2, b2 = a2[:1], b2[:1]  # one adapter for the whole batch in layer 2, expanded (stride 0) as LoRALinear does

    def model(x, a1, b1, a2, b2):
        hidden = torch.relu(batched_lora_linear(x.transpose(1, 2), w1, a1, b1, 0.5, bias1, backend="triton"))
        a2, b2 = a2.expand(n, -1, -1), b2.expand(n, -1, -1)
        return batched_lora_linear(hidden, w2, a2, b2, 0.5, bias2, backend="triton").square().mean()

    compiled = torch.compile(model, backend=compile_backend, fullgraph=True)
    results = []
    for fn in (model, compiled):
        params = [v.clone().requires_grad_() for v in (x, a1, b1, a2, b2)]
        loss = fn(*params)
        results.append([loss.detach(), *torch.autograd.grad(loss, params)])
    for got, ref in zip(results[1], results[0], strict=True):
        assert rel_err(got, ref) <= TOLERANCES[torch.float32]


def test_default_backend_is_torch(monkeypatch):
    calls = []
    real = K.batched_lora_linear_torch
    monkeypatch.setattr(K, "batched_lora_linear_torch", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    x, w, a, bb, b, _ = make_inputs(2, 5, 12, 10, 3, device=DEVICE)
    y = batched_lora_linear(x, w, a, bb, 0.5, b)
    assert calls == [1]
    assert torch.equal(y, batched_lora_linear_torch(x, w, a, bb, 0.5, b))


def test_reference_matches_naive_per_example_loop():
    x, w, a, bb, b, _ = make_inputs(3, 6, 12, 10, 2, device="cpu")
    want = torch.stack([x[i] @ w.T + b + 0.5 * (x[i] @ a[i].T) @ bb[i].T for i in range(3)])
    assert rel_err(batched_lora_linear_torch(x, w, a, bb, 0.5, b), want) <= TOLERANCES[torch.float32]


def _bad(n=2, t=5, d_in=12, d_out=10, r=3):
    x, w, a, bb, _, _ = make_inputs(n, t, d_in, d_out, r, bias=False, device="cpu")
    return {"x": x, "weight": w, "lora_A": a, "lora_B": bb}


BAD_SHAPES = {
    "x not 3-d": dict(x=torch.randn(5, 12)),
    "weight in != x in": dict(weight=torch.randn(10, 13)),
    "fewer adapters than sequences": dict(lora_A=torch.randn(1, 3, 12), lora_B=torch.randn(1, 10, 3)),
    "A in != x in": dict(lora_A=torch.randn(2, 3, 11)),
    "B out != W out": dict(lora_B=torch.randn(2, 9, 3)),
    "rank mismatch": dict(lora_B=torch.randn(2, 10, 4)),
}


@needs_triton
def test_autocast_training_step_matches_reference():
    """Under autocast with fp32 weights, as in bf16 mixed-precision training: the kernels run at the autocast
    dtype, as a linear layer would, and the backward's gradients reach the fp32 parameters. On CPU the
    interpreter has no bfloat16, so it runs float16 autocast; on CUDA, bfloat16."""
    dtype = torch.bfloat16 if CUDA else torch.float16
    x, w, a, bb, b, gy = make_inputs(3, 9, 24, 40, 4)
    results = {}
    for backend in ("triton", "torch"):
        leaves = [v.detach().clone().requires_grad_() for v in (x, a, bb)]
        with torch.autocast(DEVICE, dtype=dtype):
            y = batched_lora_linear(leaves[0], w, leaves[1], leaves[2], 0.5, b, backend=backend)
        assert y.dtype == dtype, backend
        grads = torch.autograd.grad(y, leaves, gy.to(dtype))
        assert [g.dtype for g in grads] == [torch.float32] * 3, backend
        results[backend] = (y, *grads)
    for name, got, ref in zip(("y", "dx", "dA", "dB"), results["triton"], results["torch"]):
        err = rel_err(got, ref)
        assert err <= 2e-2, f"{name}: rel. err {err:.2e}"


@needs_triton
def test_env_names_the_backend(monkeypatch):
    calls = []
    import hyperlora.kernels.lora_linear as L

    real = L.batched_lora_linear_triton
    monkeypatch.setattr(L, "batched_lora_linear_triton", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setenv("HYPERLORA_LORA_BACKEND", "triton")
    x, w, a, bb, b, _ = make_inputs(2, 5, 12, 10, 3, device="cuda" if CUDA else "cpu")
    y = batched_lora_linear(x, w, a, bb, 0.5, b)
    assert calls == [1]
    assert rel_err(y, batched_lora_linear_torch(x, w, a, bb, 0.5, b)) <= TOLERANCES[torch.float32]
    monkeypatch.setenv("HYPERLORA_LORA_BACKEND", "cuda")
    with pytest.raises(ValueError, match="HYPERLORA_LORA_BACKEND"):
        batched_lora_linear(x, w, a, bb, 0.5, b)


@pytest.mark.parametrize("backend", [None, "torch", "triton"])
@pytest.mark.parametrize("case", list(BAD_SHAPES))
def test_bad_shapes_raise_value_error(case, backend):
    args = {**_bad(), **BAD_SHAPES[case]}
    with pytest.raises(ValueError):
        batched_lora_linear(args["x"], args["weight"], args["lora_A"], args["lora_B"], 0.5, backend=backend)


def test_bad_backend_raises_value_error():
    args = _bad()
    with pytest.raises(ValueError, match="backend"):
        batched_lora_linear(args["x"], args["weight"], args["lora_A"], args["lora_B"], 0.5, backend="cuda")


@needs_triton
def test_triton_rejects_mixed_dtypes():
    args = _bad()
    with pytest.raises(ValueError, match="dtype"):
        batched_lora_linear(
            args["x"].to(DEVICE), args["weight"].to(DEVICE), args["lora_A"].to(DEVICE, torch.float64),
            args["lora_B"].to(DEVICE), 0.5, backend="triton",
        )  # fmt: skip


@needs_triton
@pytest.mark.skipif(CUDA, reason="only the CPU interpreter lacks bfloat16")
def test_interpreter_rejects_bf16():
    args = {k: v.to(torch.bfloat16) for k, v in _bad().items()}
    with pytest.raises(ValueError, match="bfloat16"):
        batched_lora_linear(args["x"], args["weight"], args["lora_A"], args["lora_B"], 0.5, backend="triton")


def test_triton_on_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    args = _bad()
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        batched_lora_linear(args["x"], args["weight"], args["lora_A"], args["lora_B"], 0.5, backend="triton")


# GPU: the compiled kernels in bf16 (and fp32) against an fp32 reference, at shapes with real tile counts.
GPU_CASES = [(n, r, t, d_in, d_out) for n, t in ((1, 300), (5, 129)) for r in (1, 8, 16, 64) for d_in, d_out in
             ((200, 120), (1000, 3000))]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("n,r,t,d_in,d_out", GPU_CASES)
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_gpu_matches_fp32_reference(n, r, t, d_in, d_out, dtype):
    check_against_reference(n, t, d_in, d_out, r, bias=True, dtype=dtype)
