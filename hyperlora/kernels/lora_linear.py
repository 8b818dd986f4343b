"""Triton kernels for per-example LoRA linear layers (forward and backward), registered for ``torch.compile``.

Every sequence e in the batch has its own adapter (A_e, B_e); the base weight W is shared and frozen:

    forward                               shapes
    S_e  = X_e A_eᵀ                       (T, r)   = (T, in) (in, r)          shrink
    Y_e  = X_e Wᵀ + b + s · S_e B_eᵀ      (T, out) = cuBLAS GEMM + expand-add
    backward (dY given)
    dS_e = s · dY_e B_e                   (T, r)   = (T, out) (out, r)        shrink of dY
    dX_e = dY_e W + dS_e A_e              (T, in)  = cuBLAS GEMM + expand-add
    dA_e = dS_eᵀ X_e                      (r, in)  segmented reduction over the rows of example e
    dB_e = s · dY_eᵀ S_e                  (out, r) segmented reduction over the rows of example e

Three private kernels cover all of it, because each backward step is a forward step on transposed views:

- ``_lora_shrink_kernel``: S = scale · X Qᵀ per example, grid (example, row tile). A row tile never straddles
  two examples because the grid walks the T axis of one example (rows past T are masked, i.e. each sequence is
  padded to the tile). Never multiplies a token by another example's A.
- ``_lora_expand_add_kernel``: Y += scale · S Pᵀ per example, grid (example, row tile, column tile). Y is the
  cuBLAS output of the base GEMM, updated in place. (A fused variant that adds S Pᵀ into the accumulator of a
  Triton base GEMM would save one read and write of Y; it slots in beside this one.)
- ``_lora_segment_grad_kernel``: G = scale · Uᵀ V per example, reducing over that example's rows only; each
  program owns one (example, column tile, T split) output block and writes it once (no atomics), and the
  T splits are summed by torch in a fixed order, so gradients are bitwise deterministic.

Rank r is padded to a power of two ≥ 16 by masking (tl.dot needs K ≥ 16 on NVIDIA). Accumulation is fp32;
S and dS are kept in fp32 (they are r columns wide, small next to the activations). fp32 dots run in IEEE
precision (no TF32), so fp32 results match the torch reference; 16-bit inputs use the tensor cores.

The op ``hyperlora::batched_lora_linear`` (returns Y and the saved S) and its backward
``hyperlora::batched_lora_linear_backward`` are ``torch.library`` custom ops with fake implementations, so
``torch.compile`` traces through them. Gradients into W and b are not what these kernels are for (W is frozen
in LoRA training), but if W or b requires grad they are computed with plain torch GEMMs rather than silently
dropped, so the op stays a drop-in for the reference.

On CPU the kernels run only under ``TRITON_INTERPRET=1`` (fp32, tiny shapes: the interpreter is slow and
gets bf16 wrong). Block sizes come from heuristics: no multi-config autotune (the interpreter cannot run it).
The kernels call only ``triton.language`` builtins (``tl.full``, not the ``@jit`` helper ``tl.zeros``): those
helpers are compiled or interpreted depending on TRITON_INTERPRET when triton is first imported, and
transformers imports triton early, so under pytest they may be compiled helpers the interpreter cannot call.
"""

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

__all__ = ["batched_lora_linear_triton"]


# ----------------------------------------------------------------------------------------------- kernels


@triton.jit
def _lora_shrink_kernel(
    X,  # (N, T, K) activations or dY
    Q,  # (N, R, K) A, or a transposed view of B
    S,  # (N, T, R) fp32 output
    T,
    K,
    R,
    stride_xn,
    stride_xt,
    stride_xk,
    stride_qn,
    stride_qr,
    stride_qk,
    stride_sn,
    stride_st,
    stride_sr,
    scale,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_R: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """S_e[tile] = scale · X_e[tile] Q_eᵀ for one (example, row tile)."""
    e = tl.program_id(0).to(tl.int64)  # int64 offsets: N·T·K passes 2³¹ at serving shapes
    pid_t = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_k = tl.arange(0, BLOCK_K)
    offs_r = tl.arange(0, BLOCK_R)
    t_mask = offs_t < T
    r_mask = offs_r < R  # rank padded to BLOCK_R >= 16

    x_ptrs = X + e * stride_xn + offs_t[:, None] * stride_xt + offs_k[None, :] * stride_xk  # (BT, BK)
    q_ptrs = Q + e * stride_qn + offs_k[:, None] * stride_qk + offs_r[None, :] * stride_qr  # (BK, BR) = Q_eᵀ
    acc = tl.full((BLOCK_T, BLOCK_R), 0.0, tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_mask = (k0 + offs_k) < K
        x = tl.load(x_ptrs, mask=t_mask[:, None] & k_mask[None, :], other=0.0)
        q = tl.load(q_ptrs, mask=k_mask[:, None] & r_mask[None, :], other=0.0)
        acc = tl.dot(x, q, acc, input_precision=DOT_PRECISION)
        x_ptrs += BLOCK_K * stride_xk
        q_ptrs += BLOCK_K * stride_qk

    s_ptrs = S + e * stride_sn + offs_t[:, None] * stride_st + offs_r[None, :] * stride_sr
    tl.store(s_ptrs, acc * scale, mask=t_mask[:, None] & r_mask[None, :])


@triton.jit
def _lora_expand_add_kernel(
    Y,  # (N, T, M) updated in place: base GEMM output, or dY W
    S,  # (N, T, R) fp32
    P,  # (N, M, R) B, or a transposed view of A
    T,
    M,
    R,
    stride_yn,
    stride_yt,
    stride_ym,
    stride_sn,
    stride_st,
    stride_sr,
    stride_pn,
    stride_pm,
    stride_pr,
    scale,
    BLOCK_T: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_R: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Y_e[tile] += scale · S_e[tile] P_eᵀ for one (example, row tile, column tile)."""
    e = tl.program_id(0).to(tl.int64)
    pid_t = tl.program_id(1)
    pid_m = tl.program_id(2)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_r = tl.arange(0, BLOCK_R)
    t_mask = offs_t < T
    m_mask = offs_m < M
    r_mask = offs_r < R

    s_ptrs = S + e * stride_sn + offs_t[:, None] * stride_st + offs_r[None, :] * stride_sr  # (BT, BR)
    p_ptrs = P + e * stride_pn + offs_r[:, None] * stride_pr + offs_m[None, :] * stride_pm  # (BR, BM) = P_eᵀ
    p = tl.load(p_ptrs, mask=r_mask[:, None] & m_mask[None, :], other=0.0)
    # S is fp32; for 16-bit P round S to P's dtype so the dot runs on tensor cores (as a bf16 bmm would)
    s = tl.load(s_ptrs, mask=t_mask[:, None] & r_mask[None, :], other=0.0).to(p.dtype)
    delta = tl.dot(s, p, input_precision=DOT_PRECISION)  # (BT, BM) fp32; one dot, K = BLOCK_R

    y_ptrs = Y + e * stride_yn + offs_t[:, None] * stride_yt + offs_m[None, :] * stride_ym
    y_mask = t_mask[:, None] & m_mask[None, :]
    y = tl.load(y_ptrs, mask=y_mask, other=0.0).to(tl.float32)
    tl.store(y_ptrs, (y + scale * delta).to(Y.dtype.element_ty), mask=y_mask)


@triton.jit
def _lora_segment_grad_kernel(
    U,  # (N, T, R) fp32: dS (for dA) or S (for dBᵀ)
    V,  # (N, T, K) x (for dA) or dY (for dBᵀ)
    G,  # (N, SPLIT, R, K) fp32 partial sums, one slot per T split
    T,
    K,
    R,
    T_PER_SPLIT,
    stride_un,
    stride_ut,
    stride_ur,
    stride_vn,
    stride_vt,
    stride_vk,
    stride_gn,
    stride_gs,
    stride_gr,
    stride_gk,
    scale,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_R: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """G[e, split] = scale · Σ_{t in split} U_e[t]ᵀ V_e[t]: a per-example reduction over rows, no atomics."""
    e = tl.program_id(0).to(tl.int64)
    pid_k = tl.program_id(1)
    pid_s = tl.program_id(2)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    offs_r = tl.arange(0, BLOCK_R)
    k_mask = offs_k < K
    r_mask = offs_r < R
    t_begin = pid_s * T_PER_SPLIT  # T_PER_SPLIT is a multiple of BLOCK_T, so splits never share a row

    acc = tl.full((BLOCK_R, BLOCK_K), 0.0, tl.float32)
    for t0 in range(0, T_PER_SPLIT, BLOCK_T):
        offs_t = t_begin + t0 + tl.arange(0, BLOCK_T)
        t_mask = offs_t < T
        v_ptrs = V + e * stride_vn + offs_t[:, None] * stride_vt + offs_k[None, :] * stride_vk  # (BT, BK)
        u_ptrs = U + e * stride_un + offs_r[:, None] * stride_ur + offs_t[None, :] * stride_ut  # (BR, BT) = U_eᵀ
        v = tl.load(v_ptrs, mask=t_mask[:, None] & k_mask[None, :], other=0.0)
        u = tl.load(u_ptrs, mask=r_mask[:, None] & t_mask[None, :], other=0.0).to(v.dtype)
        acc = tl.dot(u, v, acc, input_precision=DOT_PRECISION)

    g_ptrs = G + e * stride_gn + pid_s * stride_gs + offs_r[:, None] * stride_gr + offs_k[None, :] * stride_gk
    tl.store(g_ptrs, acc * scale, mask=r_mask[:, None] & k_mask[None, :])


# --------------------------------------------------------------------------------------------- launchers


def _block_t(t: int) -> int:
    # 64 rows per tile on GPU; short sequences get a smaller tile so little of it is masked padding
    return max(16, min(64, triton.next_power_of_2(t)))


def _block_r(r: int) -> int:
    return max(16, triton.next_power_of_2(r))  # tl.dot needs K >= 16 on NVIDIA; padding is masked


def _block_cols(k: int) -> int:
    return max(16, min(64, triton.next_power_of_2(k)))


def _dot_precision(dtype: torch.dtype) -> str:
    # torch's fp32 matmul is IEEE by default; TF32 would miss the 1e-4 fp32 tolerance. 16-bit ignores it.
    return "ieee" if dtype == torch.float32 else "tf32"


def _shrink(x: torch.Tensor, q: torch.Tensor, scale: float, block_t: int | None = None) -> torch.Tensor:
    """scale · x_e q_eᵀ per example: x (N, T, K), q (N, R, K) (any strides) -> (N, T, R) fp32."""
    n, t, k = x.shape
    r = q.shape[1]
    s = torch.empty((n, t, r), device=x.device, dtype=torch.float32)
    bt, bk, br = block_t or _block_t(t), _block_cols(k), _block_r(r)
    grid = (n, triton.cdiv(t, bt))
    _lora_shrink_kernel[grid](
        x, q, s, t, k, r, *x.stride(), *q.stride(), *s.stride(), float(scale),
        BLOCK_T=bt, BLOCK_K=bk, BLOCK_R=br, DOT_PRECISION=_dot_precision(x.dtype),
    )  # fmt: skip
    return s


def _expand_add_(y: torch.Tensor, s: torch.Tensor, p: torch.Tensor, scale: float, block_t: int | None = None):
    """y_e += scale · s_e p_eᵀ in place: y (N, T, M), s (N, T, R) fp32, p (N, M, R) (any strides)."""
    n, t, m = y.shape
    r = s.shape[2]
    bt, bm, br = block_t or _block_t(t), _block_cols(m), _block_r(r)
    grid = (n, triton.cdiv(t, bt), triton.cdiv(m, bm))
    _lora_expand_add_kernel[grid](
        y, s, p, t, m, r, *y.stride(), *s.stride(), *p.stride(), float(scale),
        BLOCK_T=bt, BLOCK_M=bm, BLOCK_R=br, DOT_PRECISION=_dot_precision(p.dtype),
    )  # fmt: skip
    return y


def _num_t_splits(n: int, t: int, k: int, block_t: int, block_k: int, device: torch.device) -> int:
    # Few examples x few column tiles leaves most SMs idle while each program walks all T rows: split T so
    # there are ~2 programs per SM. The interpreter runs programs one by one, so there one split is fastest.
    if device.type != "cuda":
        return 1
    programs = n * triton.cdiv(k, block_k)
    target = 2 * torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(triton.cdiv(t, block_t), triton.cdiv(target, programs)))


def _segment_grad(
    u: torch.Tensor, v: torch.Tensor, scale: float, block_t: int | None = None, splits: int | None = None
) -> torch.Tensor:
    """scale · u_eᵀ v_e per example: u (N, T, R) fp32, v (N, T, K) -> (N, R, K) fp32, deterministic."""
    n, t, r = u.shape
    k = v.shape[2]
    bt, bk, br = block_t or _block_t(t), _block_cols(k), _block_r(r)
    splits = splits or _num_t_splits(n, t, k, bt, bk, v.device)
    t_per_split = triton.cdiv(triton.cdiv(t, splits), bt) * bt  # whole tiles per split
    splits = triton.cdiv(t, t_per_split)
    g = torch.empty((n, splits, r, k), device=v.device, dtype=torch.float32)
    grid = (n, triton.cdiv(k, bk), splits)
    _lora_segment_grad_kernel[grid](
        u, v, g, t, k, r, t_per_split, *u.stride(), *v.stride(), *g.stride(), float(scale),
        BLOCK_T=bt, BLOCK_K=bk, BLOCK_R=br, DOT_PRECISION=_dot_precision(v.dtype),
    )  # fmt: skip
    return g.sum(1) if splits > 1 else g[:, 0]  # fixed-order sum over splits: deterministic


# ------------------------------------------------------------------------------------ registered ops


@torch.library.custom_op("hyperlora::batched_lora_linear", mutates_args=())
def _lora_linear_fwd(
    x: torch.Tensor,
    weight: torch.Tensor,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    scaling: float,
    bias: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns Y (N, T, out) and S = X A_eᵀ (N, T, r) fp32, which the backward reuses instead of re-reading X."""
    y = F.linear(x, weight, bias)  # (N, T, out): the base GEMM on cuBLAS
    s = _shrink(x, lora_A, 1.0)  # (N, T, r) fp32
    _expand_add_(y, s, lora_B, scaling)  # y += scaling · S B_eᵀ
    return y, s


@_lora_linear_fwd.register_fake
def _(x, weight, lora_A, lora_B, scaling, bias):
    n, t, _ = x.shape
    return x.new_empty((n, t, weight.shape[0])), x.new_empty((n, t, lora_A.shape[1]), dtype=torch.float32)


@torch.library.custom_op("hyperlora::batched_lora_linear_backward", mutates_args=())
def _lora_linear_bwd(
    grad_y: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    s: torch.Tensor,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns dX (N, T, in), dA (N, r, in), dB (N, out, r) given dY (N, T, out) and the saved S."""
    ds = _shrink(grad_y, lora_B.transpose(1, 2), scaling)  # (N, T, r) fp32 = s · dY_e B_e
    grad_x = torch.matmul(grad_y, weight)  # (N, T, in) = dY W, cuBLAS
    _expand_add_(grad_x, ds, lora_A.transpose(1, 2), 1.0)  # dX += dS_e A_e
    grad_A = _segment_grad(ds, x, 1.0).to(lora_A.dtype)  # (N, r, in) = dS_eᵀ X_e
    grad_Bt = _segment_grad(s, grad_y, scaling)  # (N, r, out) = s · S_eᵀ dY_e
    grad_B = grad_Bt.transpose(1, 2).to(lora_B.dtype).contiguous()  # (N, out, r)
    return grad_x, grad_A, grad_B


@_lora_linear_bwd.register_fake
def _(grad_y, x, weight, lora_A, lora_B, s, scaling):
    # contiguous like the real outputs (empty_like would copy the strides of a transposed x or an expanded A)
    return x.new_empty(x.shape), lora_A.new_empty(lora_A.shape), lora_B.new_empty(lora_B.shape)


def _setup_context(ctx, inputs, output):
    x, weight, lora_A, lora_B, scaling, bias = inputs
    _, s = output
    ctx.save_for_backward(x, weight, lora_A, lora_B, s)
    ctx.scaling = scaling
    ctx.mark_non_differentiable(s)  # S is an implementation detail the public wrapper drops


def _backward(ctx, grad_y, _grad_s):
    x, weight, lora_A, lora_B, s = ctx.saved_tensors
    grad_x, grad_A, grad_B = torch.ops.hyperlora.batched_lora_linear_backward(
        grad_y, x, weight, lora_A, lora_B, s, ctx.scaling
    )
    # W and b are frozen in LoRA training; if a caller still asks for their grads, compute them in torch
    # instead of returning None silently.
    grad_w = grad_b = None
    if ctx.needs_input_grad[1]:
        grad_w = torch.einsum("nto,nti->oi", grad_y, x).to(weight.dtype)  # (out, in) = Σ dYᵀ X
    if ctx.needs_input_grad[5]:
        grad_b = grad_y.sum((0, 1))  # (out,)
    return grad_x, grad_w, grad_A, grad_B, None, grad_b


_lora_linear_fwd.register_autograd(_backward, setup_context=_setup_context)


def batched_lora_linear_triton(
    x: torch.Tensor,
    weight: torch.Tensor,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    scaling: float,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = x Wᵀ + bias + scaling · (x A_iᵀ) B_iᵀ on the Triton kernels; differentiable in x, lora_A, lora_B.

    Args:
        x: (N, T, in) activations (CUDA, or CPU under TRITON_INTERPRET=1).
        weight: (out, in) base weight; frozen in LoRA training (its grad, if requested, comes from torch).
        lora_A: (N, r, in) per-sequence down projections, same dtype as x.
        lora_B: (N, out, r) per-sequence up projections, same dtype as x.
        scaling: LoRA scale (alpha / r times strength).
        bias: optional (out,) base bias.

    Returns:
        (N, T, out) tensor in x's dtype.
    """
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        # Autocast does not reach inside a custom op's kernels, so cast here as it would for a linear layer:
        # everything at the autocast dtype, then the kernels and the backward see one dtype. Without this a bf16
        # mixed-precision run crashed in the backward on an H200 (dY bf16 against the fp32 weight).
        dtype = torch.get_autocast_dtype(device_type)
        x, weight, lora_A, lora_B = (v.to(dtype) for v in (x, weight, lora_A, lora_B))
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(device_type, enabled=False):
            return batched_lora_linear_triton(x, weight, lora_A, lora_B, scaling, bias)
    if lora_A.dtype != x.dtype or lora_B.dtype != x.dtype:
        raise ValueError(f"x, lora_A and lora_B must share a dtype, got {x.dtype}, {lora_A.dtype}, {lora_B.dtype}")
    if not x.is_cuda and x.dtype == torch.bfloat16:
        # numpy has no bfloat16: the interpreter returns garbage (rel. err ~1e9 measured) instead of failing
        raise ValueError("the Triton interpreter cannot run bfloat16; use fp32 on CPU, or backend='torch'")
    y, _ = torch.ops.hyperlora.batched_lora_linear(x, weight, lora_A, lora_B, float(scaling), bias)
    return y
