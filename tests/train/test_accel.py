"""torch.compile with a clean way out, and which runs compile."""

from __future__ import annotations

import contextlib

import torch

from webmill.train.accel import compile_or_eager, wants_compile
from webmill.train.model import LlamaLM, ModelConfig


def tiny():
    torch.manual_seed(0)
    model = LlamaLM(ModelConfig.preset("tiny", 300, max_seq_len=64))
    model.init_weights(0)
    return model, torch.randint(0, 300, (2, 17), generator=torch.Generator().manual_seed(1))


def test_a_failing_compile_falls_back_to_eager_with_one_line():
    model, example = tiny()

    def broken_backend(graph, inputs):
        raise RuntimeError("no C++ compiler on this machine")

    lines = []
    module, what = compile_or_eager(
        model, list(model.parameters()), example, contextlib.nullcontext(), backend=broken_backend, say=lines.append
    )
    assert module is model and what.startswith("eager")
    assert len(lines) == 1 and "no C++ compiler on this machine" in lines[0]
    assert all(p.grad is None for p in model.parameters())  # the try leaves no gradients behind


def test_a_working_compile_computes_what_eager_computes():
    model, example = tiny()
    module, what = compile_or_eager(model, list(model.parameters()), example, contextlib.nullcontext(), backend="eager")
    assert what == "compiled" and module is not model
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        assert torch.allclose(module(example[:, :-1], example[:, 1:]), model(example[:, :-1], example[:, 1:]))


def test_auto_compiles_on_cuda_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert not wants_compile("auto", cpu) and wants_compile("auto", cuda)
    assert wants_compile("on", cpu) and not wants_compile("off", cuda)
    assert wants_compile(True, cpu) and not wants_compile(False, cuda)  # plans written before the setting had three values
