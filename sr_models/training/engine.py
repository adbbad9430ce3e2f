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
from typing import Any, Callable, Dict, Optional

import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup, get_polynomial_decay_schedule_with_warmup

__all__ = ["Task", "train", "latest_checkpoint", "build_optimizer", "build_schedule"]


@dataclass
class Task:
    """What differs between tasks: the model, the data, the loss, the evaluation, the extra outputs."""
    model: nn.Module
    train_set: Dataset
    val_set: Dataset
    loss: Callable[[Any, Dict[str, torch.Tensor]], torch.Tensor]
    evaluate: Callable[[Accelerator, nn.Module, Dataset], Dict[str, Any]]
    write_outputs: Callable[[nn.Module, Dataset, Path], None]


class _Progress:
    """The optimizer-step counter, saved and restored with the checkpoints."""

    def __init__(self):
        self.step = 0

    def state_dict(self) -> Dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.step = int(state["step"])


def build_optimizer(cfg: Dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    optim = cfg["optim"]
    if optim["name"] == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"])
    return torch.optim.SGD(model.parameters(), lr=optim["lr"], momentum=optim.get("momentum", 0.9),
                           weight_decay=optim["weight_decay"])


def build_schedule(cfg: Dict[str, Any], optimizer: torch.optim.Optimizer):
    """Poly, lr (1 - step / total)^power after a linear warm-up, or cosine with warm-up; one step per update."""
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


def train(cfg: Dict[str, Any], output_dir: Path, build_task: Callable[[Dict[str, Any]], Task],
          resume: bool = False) -> Dict[str, Any]:
    """Train `build_task(cfg)` for `cfg["max_steps"]` optimizer steps, evaluate, and write the run's outputs."""
    output_dir = Path(output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg["grad_accum_steps"],
        log_with="tensorboard" if _tensorboard_available() else None,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    set_seed(cfg["seed"])
    task = build_task(cfg)
    model = task.model
    if accelerator.device.type == "cuda" and accelerator.num_processes > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(cfg, model)
    schedule = build_schedule(cfg, optimizer)  # stepped once per update, so it is not prepared (see engine docs)
    # its own generator: creating an iterator (every epoch, and on resume) must not draw from the global RNG,
    # or a resumed run's dropout masks would drift from the uninterrupted run's
    loader = DataLoader(task.train_set, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                        num_workers=cfg["num_workers"], generator=torch.Generator().manual_seed(cfg["seed"]))
    if len(loader) == 0:
        raise ValueError(f"batch_size={cfg['batch_size']} is larger than the training set ({len(task.train_set)})")
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    progress = _Progress()
    accelerator.register_for_checkpointing(schedule, progress)
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
            with accelerator.accumulate(model):
                loss = task.loss(model(batch["pixel_values"]), batch)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            schedule.step()
            progress.step += 1
            bar.update()
            if progress.step % cfg["log_every"] == 0 or progress.step == cfg["max_steps"]:
                logged = {"loss": accelerator.reduce(loss.detach(), "mean").item(), "lr": schedule.get_last_lr()[0]}
                bar.set_postfix(loss=f"{logged['loss']:.4f}", lr=f"{logged['lr']:.2e}")
                accelerator.log(logged, step=progress.step)
            if progress.step % cfg["checkpoint_every"] == 0 or progress.step == cfg["max_steps"]:
                _save_checkpoint(accelerator, output_dir, progress.step, cfg["keep_checkpoints"])
            if progress.step >= cfg["max_steps"]:
                break
        epoch += 1
    bar.close()

    model = accelerator.unwrap_model(model)
    model.eval()
    metrics = task.evaluate(accelerator, model, task.val_set)
    # DDP keeps replicas equal; check it rather than trust it
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    checksums = accelerator.gather(checksum.to(accelerator.device)).cpu().tolist()
    if max(checksums) - min(checksums) > 1e-6 * max(1.0, abs(checksums[0])):
        raise RuntimeError(f"the model replicas diverged across processes: weight checksums {checksums}")
    metrics.update(steps=progress.step, num_processes=accelerator.num_processes, replica_checksums=checksums)
    if accelerator.is_main_process:
        task.write_outputs(model, task.val_set, output_dir)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics
