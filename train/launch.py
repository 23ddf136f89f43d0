"""Run the training function in this process, or on N Ray Train workers (DDP: gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

import posixpath

from webmill.train.plan import save_plan
from webmill.train.runfiles import RunFiles
from webmill.train.trainer import train_loop

SUMMARY = "summary.json"


def run_training(plan: dict, ray_fn=None) -> dict:
    """``ray_fn()`` starts or joins Ray; it is called only when ``workers`` > 1. One training
    session per run folder at a time (``webmill.locks``)."""
    from webmill.locks import run_lock

    folder, name = posixpath.split(plan["run"].strip("/"))
    root = RunFiles.of(plan).root
    with run_lock(root, folder, name):
        return _run_training_locked({**plan, "_fences": dict(root.fences)}, ray_fn)


def _run_training_locked(plan: dict, ray_fn) -> dict:
    save_plan(plan)
    if plan["train"]["workers"] <= 1:
        summary = train_loop(plan)
        _write_summary(plan, summary)
        return summary
    ray_fn()
    return _run_on_ray(plan)


def _write_summary(plan: dict, summary: dict) -> None:
    RunFiles.of(plan).write_json(summary, SUMMARY)


def _ray_worker(plan: dict) -> None:
    import ray.train
    import torch

    cpus = plan.get("_cpus_per_worker") or 1
    torch.set_num_threads(max(1, int(cpus)))
    summary = train_loop(plan)
    if ray.train.get_context().get_world_rank() == 0:
        _write_summary(plan, summary)
    ray.train.report({"step": summary["step"], "train_loss": summary["train_loss"] or 0.0})


def _run_on_ray(plan: dict) -> dict:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    cfg = plan["train"]
    run = RunFiles.of(plan)
    gpus = cfg["gpus_per_worker"]
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1) // cfg["workers"]))
    plan = {**plan, "_cpus_per_worker": cpus}
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config=plan,
        scaling_config=ScalingConfig(num_workers=cfg["workers"], use_gpu=gpus > 0, resources_per_worker=resources),
        torch_config=TorchConfig(backend="nccl" if gpus > 0 else "gloo"),
        # Ray Train's own files (we keep no checkpoints there) also live in the run's folder of the root
        run_config=RunConfig(name=plan["name"], storage_path=run.path("ray"), storage_filesystem=run.root.fs),
    )
    trainer.fit()
    return run.read_json(SUMMARY)
