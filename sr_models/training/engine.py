"""The training loop shared by segmentation and classification: Accelerate, checkpoints, resume, progress, logs.

Checkpoints (`accelerator.save_state`) go to `<output_dir>/checkpoints/step_<N>`; each is written to a temporary
folder and renamed when complete, so a crash (even `kill -9`) mid-save never leaves a half checkpoint behind.
`resume=True` loads the newest one, restores model, optimizer, schedule, step and RNG states, and skips the
batches of the current epoch already seen (`skip_first_batches`): the run ends with the weights of an
uninterrupted run.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup, get_polynomial_decay_schedule_with_warmup

from ..hf import save_pretrained
from .plots import plot_curves

__all__ = ["Task", "train", "latest_checkpoint", "build_optimizer", "build_schedule"]


@dataclass
class Task:
    """What differs between tasks: the model, the data, the loss, the evaluation, the extra outputs."""
    model: nn.Module
    train_set: Dataset
    val_set: Dataset
    loss: Callable[[Any, Dict[str, torch.Tensor]], torch.Tensor]
    evaluate: Callable[[Accelerator, nn.Module, Dataset], Dict[str, Any]]
    write_outputs: Callable[[nn.Module, Dataset, Path, Dict[str, Any]], None]  # writes the metrics' arrays
    prepare_batch: Optional[Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None  # e.g. mixup
    metric: str = "mIoU"  # the headline number of `evaluate`, drawn in curves.png


class _Progress:
    """The optimizer-step counter and the logged curves, saved and restored with the checkpoints."""

    def __init__(self):
        self.step = 0
        self.train_log: List[Dict[str, float]] = []  # {"step", "loss", "lr"} every log_every updates
        self.eval_log: List[Dict[str, float]] = []  # {"step", metric, "ema_" + metric} every eval_every updates

    def state_dict(self) -> Dict[str, Any]:
        return {"step": self.step, "train_log": self.train_log, "eval_log": self.eval_log}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.train_log, self.eval_log = list(state.get("train_log", [])), list(state.get("eval_log", []))


def build_optimizer(cfg: Dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """timm's `create_optimizer_v2` from `optim`: any timm optimizer name (`sgd` here is classical momentum SGD, as
    in the paper, unless `nesterov: true`), no weight decay on norms and biases with `filter_bias_and_bn`, and
    layer-wise learning-rate decay with `layer_decay` (group learning rates scaled by `lr_scale`)."""
    optim = dict(cfg["optim"])
    name = optim.pop("name")
    extra = {"nesterov": optim.pop("nesterov", False)} if name == "sgd" else {}
    optim.pop("clip_grad", None)
    if name not in ("sgd", "momentum", "nesterov"):
        optim.pop("momentum", None)
    return create_optimizer_v2(model, opt=name, **optim, **extra)


def build_schedule(cfg: Dict[str, Any], optimizer: torch.optim.Optimizer):
    """Poly, lr (1 - step / total)^power after a linear warm-up, or cosine with warm-up; one step per update.
    A group's `lr_scale` (timm's layer decay) scales its learning rate for the whole schedule."""
    for group in optimizer.param_groups:
        group["lr"] *= group.pop("lr_scale", 1.0)
    schedule, total = cfg["schedule"], cfg["max_steps"]
    warmup = int(schedule.get("warmup_steps", 0))
    if schedule["name"] == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total)
    return get_polynomial_decay_schedule_with_warmup(optimizer, warmup, total, lr_end=0.0,
                                                     power=schedule.get("power", 0.9))


def latest_checkpoint(output_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint folder of a run, if any."""
    folders = sorted((Path(output_dir) / "checkpoints").glob("step_*"), key=lambda p: int(p.name[5:]))
    return folders[-1] if folders else None


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, keep: int) -> None:
    root = Path(output_dir) / "checkpoints"
    tmp = root / f"tmp_step_{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp.rename(root / f"step_{step}")  # atomic: a checkpoint folder is complete or absent
        for old in sorted(root.glob("step_*"), key=lambda p: int(p.name[5:]))[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _build_ema(ema: Dict[str, Any], model: nn.Module) -> Optional[ModelEmaV3]:
    """timm's EMA of the weights (parameters and buffers) when `ema.decay` is set; `ema.warmup` ramps the decay
    up from 0 as 1 - (1 + step)^(-2/3). Built before `prepare`, so it copies the plain module."""
    if not ema.get("decay"):
        return None
    return ModelEmaV3(model, decay=ema["decay"], use_warmup=ema.get("warmup", False))


def _evaluate(accelerator: Accelerator, task: Task, model: nn.Module, ema: Optional[ModelEmaV3]) -> Dict[str, Any]:
    """The task's evaluation of `model` and, with EMA on, the scalar results of the EMA weights (`ema_` keys)."""
    model.eval()
    metrics = task.evaluate(accelerator, model, task.val_set)
    if ema is not None:
        averaged = task.evaluate(accelerator, ema.module, task.val_set)
        metrics.update({f"ema_{key}": value for key, value in averaged.items()
                        if isinstance(value, float) or (isinstance(value, int) and key != "eval_images")})
    return metrics


def _eval_point(task: Task, step: int, metrics: Dict[str, Any]) -> Dict[str, float]:
    return {"step": step, **{key: metrics[key] for key in (task.metric, f"ema_{task.metric}") if key in metrics}}


def train(cfg: Dict[str, Any], output_dir: Path, build_task: Callable[[Dict[str, Any]], Task],
          resume: bool = False) -> Dict[str, Any]:
    """Train `build_task(cfg)` for `cfg["max_steps"]` optimizer steps, evaluate, and write the run's outputs."""
    output_dir = Path(output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg["grad_accum_steps"],
        log_with="tensorboard" if _tensorboard_available() else None,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # speed switches (None: the launcher's choice); channels_last is set on the model below
        mixed_precision=cfg.get("mixed_precision"),
        dynamo_backend="inductor" if cfg.get("compile") else None,
    )
    set_seed(cfg["seed"])
    task = build_task(cfg)
    model = task.model
    if accelerator.device.type == "cuda" and accelerator.num_processes > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if cfg.get("channels_last"):  # weights and inputs in NHWC
        model = model.to(memory_format=torch.channels_last)
        model.register_forward_pre_hook(lambda _, args: tuple(
            a.contiguous(memory_format=torch.channels_last) if torch.is_tensor(a) and a.ndim == 4 else a
            for a in args))
    ema = _build_ema(cfg.get("ema") or {}, model.to(accelerator.device))
    optimizer = build_optimizer(cfg, model)
    schedule = build_schedule(cfg, optimizer)  # stepped once per update, so it is not prepared (see engine docs)
    # its own generator: creating an iterator (every epoch, and on resume) must not draw from the global RNG,
    # or a resumed run's dropout masks would drift from the uninterrupted run's
    loader = DataLoader(task.train_set, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                        num_workers=cfg["num_workers"], generator=torch.Generator().manual_seed(cfg["seed"]))
    if len(loader) == 0:
        raise ValueError(f"batch_size={cfg['batch_size']} is larger than the training set ({len(task.train_set)})")
    raw_model = model  # the parameters that train; DDP and torch.compile wrap it
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    progress = _Progress()
    accelerator.register_for_checkpointing(schedule, progress, *([ema] if ema is not None else []))
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if resume:
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {output_dir / 'checkpoints'}")
        accelerator.load_state(str(checkpoint))
        accelerator.print(f"resumed from {checkpoint} at step {progress.step}")
    accelerator.init_trackers("train", config={k: v for k, v in cfg.items() if isinstance(v, (int, float, str))})

    clip_grad = cfg["optim"].get("clip_grad")
    epoch, skip = divmod(progress.step * cfg["grad_accum_steps"], len(loader))
    bar = tqdm(total=cfg["max_steps"], initial=progress.step, desc="train", disable=not accelerator.is_main_process)
    while progress.step < cfg["max_steps"]:
        loader.set_epoch(epoch)
        if hasattr(task.train_set, "set_epoch"):
            task.train_set.set_epoch(epoch, cfg["seed"])  # augmentation seeded by (seed, epoch, index)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for batch in batches:
            model.train()
            if task.prepare_batch is not None:
                batch = task.prepare_batch(batch)
            with accelerator.accumulate(model):
                loss = task.loss(model(batch["pixel_values"]), batch)
                accelerator.backward(loss)
                if clip_grad and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), clip_grad)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            schedule.step()
            progress.step += 1
            if ema is not None:
                ema.update(raw_model, step=progress.step)
            bar.update()
            if progress.step % cfg["log_every"] == 0 or progress.step == cfg["max_steps"]:
                logged = {"loss": accelerator.reduce(loss.detach(), "mean").item(), "lr": schedule.get_last_lr()[0]}
                bar.set_postfix(loss=f"{logged['loss']:.4f}", lr=f"{logged['lr']:.2e}")
                accelerator.log(logged, step=progress.step)
                progress.train_log.append({"step": progress.step, **logged})
            if cfg.get("eval_every") and progress.step % cfg["eval_every"] == 0 and progress.step < cfg["max_steps"]:
                metrics = _evaluate(accelerator, task, raw_model, ema)
                progress.eval_log.append(_eval_point(task, progress.step, metrics))
                accelerator.log({k: v for k, v in progress.eval_log[-1].items() if k != "step"}, step=progress.step)
            if progress.step % cfg["checkpoint_every"] == 0 or progress.step == cfg["max_steps"]:
                _save_checkpoint(accelerator, output_dir, progress.step, cfg["keep_checkpoints"])
            if progress.step >= cfg["max_steps"]:
                break
        epoch += 1
    bar.close()

    model = raw_model.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors only
    metrics = _evaluate(accelerator, task, model, ema)
    # DDP keeps replicas equal; check it rather than trust it
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    checksums = accelerator.gather(checksum.to(accelerator.device)).cpu().tolist()
    if max(checksums) - min(checksums) > 1e-6 * max(1.0, abs(checksums[0])):
        raise RuntimeError(f"the model replicas diverged across processes: weight checksums {checksums}")
    metrics.update(steps=progress.step, num_processes=accelerator.num_processes, replica_checksums=checksums)
    if accelerator.is_main_process:
        task.write_outputs(model, task.val_set, output_dir, metrics)
    metrics = {key: value for key, value in metrics.items() if not isinstance(value, np.ndarray)}  # in files
    if accelerator.is_main_process:
        if ema is not None:
            save_pretrained(ema.module.to(memory_format=torch.contiguous_format), output_dir / "ema")
        eval_log = [*progress.eval_log, _eval_point(task, progress.step, metrics)]
        (output_dir / "curves.json").write_text(json.dumps({"train": progress.train_log, "eval": eval_log}))
        plot_curves(progress.train_log, eval_log, task.metric, output_dir / "curves.png")
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics
