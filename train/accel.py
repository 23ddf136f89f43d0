"""What makes a CUDA step fast, each with a clean way out: TF32 matmuls, the flash path of
scaled-dot-product attention (checked, not assumed), and ``torch.compile`` falling back to
eager when compilation fails. On a CPU none of them applies and the step stays exact
(bit-for-bit resume is tested there)."""

from __future__ import annotations

import sys

import torch


def configure(device: torch.device) -> None:
    """TF32 for the float32 matmuls left outside bf16 autocast (CUDA only)."""
    if device.type != "cuda":
        return
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9
        matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    else:
        torch.set_float32_matmul_precision("high")


def attention_path(model_cfg, device: torch.device, dtype: torch.dtype) -> str:
    """Which SDPA kernel the model's attention gets on this device: "flash" when the flash
    kernel accepts the model's head size and dtype (tried on a small causal batch with only
    flash allowed), else the reason it does not."""
    if device.type != "cuda":
        return "math (CPU)"
    from torch.nn.attention import SDPBackend, sdpa_kernel

    shape = (1, model_cfg.n_heads, 64, model_cfg.head_dim)
    q = torch.randn(shape, device=device, dtype=dtype)
    kv = torch.randn((1, model_cfg.n_kv_heads, 64, model_cfg.head_dim), device=device, dtype=dtype)
    try:
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            torch.nn.functional.scaled_dot_product_attention(
                q, kv, kv, is_causal=True, enable_gqa=model_cfg.n_kv_heads != model_cfg.n_heads
            )
        torch.cuda.synchronize(device)
        return "flash"
    except RuntimeError as e:
        return f"not flash ({str(e).splitlines()[0][:120]})"


def wants_compile(setting, device: torch.device) -> bool:
    """``[train] compile``: "auto" compiles on CUDA; "on"/"off" (or a plan's older true/false) decide."""
    if setting in ("auto", None):
        return device.type == "cuda"
    return setting in ("on", True)


def compile_or_eager(module, params, example: torch.Tensor, autocast, backend="inductor", say=None):
    """``torch.compile(module)``, tried on one forward and backward of ``example`` (a batch of
    the run's shape: both graphs are compiled then, not in the middle of a run); the module
    itself, with one line on stderr, when that fails (no compiler, an unsupported op, a backend
    error). The try's gradients are dropped. Returns (module to train through, what ran)."""
    say = say or (lambda line: print(line, file=sys.stderr))
    compiled = torch.compile(module, backend=backend)
    try:
        with autocast:
            loss = compiled(example[:, :-1], example[:, 1:])
        loss.backward()
    except Exception as e:  # compilation failures come as many exception types
        cause = getattr(e, "inner_exception", None) or e.__cause__ or e  # a backend's own error, not dynamo's wrapper
        first = str(cause).strip().splitlines()[0][:160] if str(cause).strip() else ""
        say(f"train: torch.compile failed ({type(cause).__name__}: {first}); training eager")
        return module, "eager (torch.compile failed)"
    finally:
        for p in params:
            p.grad = None
    return compiled, "compiled"
