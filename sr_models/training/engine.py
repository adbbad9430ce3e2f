"""The training loop shared by the tasks: Accelerate, run folders, checkpoints, resume, progress, logs.

`train` reads like the recipe: claim the run folder, build the task, prepare optimizer/schedule/loader, resume,
loop, evaluate, write the outputs.

A run folder holds one run: starting into a non-empty folder is refused unless `resume` (continue its run) or
`overwrite` (delete it and start again) is given.

Checkpoints go to `<output_dir>/checkpoints/step_<N>/`, written under a temporary name and renamed when complete,
so a crash (even `kill -9`) never leaves a half checkpoint. Nothing in them is a pickle: `model.safetensors`
(and `ema.safetensors` with EMA on), `optimizer.pt` (tensors and numbers, read back with
`torch.load(weights_only=True)`), `trainer_state.json` (step, sampler position, schedule, logged curves) and
`rng_state_<rank>.json` (Python, NumPy and torch generators of each process). Resuming restores all of them and
skips the batches of the current epoch already seen: the run ends with the weights of an uninterrupted run. A
missing or unreadable part stops the resume with an error naming the file; `resume_partial=True` continues without
an optimizer or RNG part, with a warning.
"""
from __future__ import annotations

import json
import random
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from safetensors.torch import load_model, save_model
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup, get_polynomial_decay_schedule_with_warmup

from ..hf import save_pretrained
from ..models.warm_start import warm_start_from_resnet
from .config import Recipe
from .plots import plot_curves

__all__ = ["Task", "CheckpointError", "train", "latest_checkpoint", "build_optimizer", "build_schedule"]


def _forward_pixel_values(model: nn.Module, batch: Dict[str, torch.Tensor]) -> Any:
    return model(batch["pixel_values"])


@dataclass
class Task:
    """What differs between tasks: the model, the data, the loss, the evaluation, the extra outputs.

    A training step computes `loss(forward(model, batch), batch)`; `forward` defaults to `model(pixel_values)`
    (detectors take their targets too), `collate_fn` to the DataLoader's default (detectors take lists).
    """
    model: nn.Module
    train_set: Dataset
    val_set: Dataset
    loss: Callable[[Any, Any], torch.Tensor]
    evaluate: Callable[[Accelerator, nn.Module, Dataset], Dict[str, Any]]
    write_outputs: Callable[[nn.Module, Dataset, Path, Dict[str, Any]], None]  # writes the metrics' arrays
    prepare_batch: Optional[Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None  # e.g. mixup
    metric: str = "mIoU"  # the headline number of `evaluate`, drawn in curves.png
    forward: Callable[[nn.Module, Any], Any] = _forward_pixel_values
    collate_fn: Optional[Callable] = None
    save_model: Callable[[nn.Module, Path], Any] = save_pretrained  # a model folder (the EMA's `ema/`)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the file."""


@dataclass
class _Run:
    """The prepared objects of a run and its position: `step` updates done, `batches` seen in epoch `epoch`."""
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    loader: DataLoader
    ema: Optional[ModelEmaV3] = None
    step: int = 0
    epoch: int = 0
    batches: int = 0
    train_log: List[Dict[str, float]] = field(default_factory=list)  # {"step", "loss", "lr"} every log_every
    eval_log: List[Dict[str, float]] = field(default_factory=list)  # {"step", metric, "ema_" + metric}


def build_optimizer(cfg: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """timm's `create_optimizer_v2`: any timm optimizer (`sgd` is classical momentum SGD, as in the paper, unless
    `optim.nesterov`), no weight decay on norms and biases with `optim.filter_bias_and_bn`, layer-wise learning
    rates with `optim.layer_decay` (a group's `lr_scale`, applied by `build_schedule`)."""
    optim = cfg.optim
    extra = {"nesterov": optim.nesterov} if optim.name == "sgd" else {}
    return create_optimizer_v2(model, opt=optim.name, lr=optim.lr, weight_decay=optim.weight_decay,
                               momentum=optim.momentum, filter_bias_and_bn=optim.filter_bias_and_bn,
                               layer_decay=optim.layer_decay, **extra)


def _step_factor(step: int, warmup_steps: int, warmup_ratio: float, milestones: Tuple[int, ...],
                 gamma: float) -> float:
    factor = gamma ** sum(step >= m for m in milestones)
    if step < warmup_steps:
        factor *= warmup_ratio + (1 - warmup_ratio) * step / warmup_steps
    return factor


def build_schedule(cfg: Recipe, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """Poly, lr (1 - step / total)^power after a linear warm-up; cosine with warm-up; or step (mmdetection's
    schedules: lr x gamma at each of `milestones`, after a linear warm-up from `warmup_ratio` x lr). One step per
    update. A group's `lr_scale` (timm's layer decay) scales its learning rate for the whole schedule."""
    for group in optimizer.param_groups:
        group["lr"] *= group.pop("lr_scale", 1.0)
    schedule = cfg.schedule
    if schedule.name == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, schedule.warmup_steps, cfg.max_steps)
    if schedule.name == "step":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
            _step_factor, warmup_steps=schedule.warmup_steps, warmup_ratio=schedule.warmup_ratio,
            milestones=tuple(schedule.milestones), gamma=schedule.gamma))
    return get_polynomial_decay_schedule_with_warmup(optimizer, schedule.warmup_steps, cfg.max_steps, lr_end=0.0,
                                                     power=schedule.power)


_CHECKPOINT = re.compile(r"step_(\d+)")
_RUN_FILES = ("config.yaml", "checkpoints", "metrics.json")  # what makes a folder a run folder (for --overwrite)


def _checkpoints(output_dir: Path) -> List[Path]:
    """The complete checkpoint folders of a run, oldest first."""
    folders = [p for p in (Path(output_dir) / "checkpoints").glob("step_*") if _CHECKPOINT.fullmatch(p.name)]
    return sorted(folders, key=lambda p: int(p.name[5:]))


def latest_checkpoint(output_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint folder of a run, if any."""
    folders = _checkpoints(output_dir)
    return folders[-1] if folders else None


# ------------------------------------------------------------------------------------------------------ the steps
def train(cfg: Recipe, output_dir: Path, build_task: Callable[[Recipe], Task], resume: bool = False,
          overwrite: bool = False, resume_partial: bool = False) -> Dict[str, Any]:
    """Train `build_task(cfg)` for `cfg.max_steps` optimizer updates, evaluate, and write the run's outputs."""
    output_dir = Path(output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum_steps,
        log_with="tensorboard" if _tensorboard_available() else None,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
        mixed_precision=cfg.mixed_precision,  # speed switches (null: the launcher's); channels_last in _prepare
        dynamo_backend="inductor" if cfg.compile else None,
    )
    _claim_run_folder(accelerator, output_dir, resume, overwrite)
    set_seed(cfg.seed)
    with accelerator.main_process_first():  # rank 0 generates a data set the others then read
        task = build_task(cfg)
    if cfg.model.init_from and not resume:  # a resumed run reloads its own weights
        _warm_start(accelerator, task.model, cfg.model.init_from)
    run = _prepare(accelerator, cfg, task)
    if resume:
        _resume(accelerator, run, output_dir, resume_partial)
    _record_recipe(accelerator, cfg, output_dir, resume)
    _loop(accelerator, cfg, task, run, output_dir)
    model = _plain(accelerator, run.model)
    metrics = _evaluate(accelerator, task, model, run.ema)
    metrics["steps"] = run.step
    return_metrics = _write_outputs(accelerator, task, model, run, metrics, output_dir)
    accelerator.end_training()
    return return_metrics


def _plain(accelerator: Accelerator, model: nn.Module) -> nn.Module:
    """The trained module itself: not wrapped by DDP or torch.compile, weights in the default memory format."""
    return accelerator.unwrap_model(model, keep_torch_compile=False).to(memory_format=torch.contiguous_format)


def _warm_start(accelerator: Accelerator, model: nn.Module, source: str) -> None:
    """`model.init_from`: the SR-ResNet starts as a pretrained ResNet (sr_models.models.warm_start)."""
    report = warm_start_from_resnet(model, source)
    accelerator.print(f"init_from {source}: {len(report['copied'])} tensors copied, {len(report['kept'])} kept "
                      f"(SR gates set to start as the ResNet's blocks), {len(report['unused'])} unused")


def _claim_run_folder(accelerator: Accelerator, output_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder: a used folder needs `resume` or `overwrite` (which empties it)."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the run, or start it again")
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"the run folder {output_dir} is a file")
    used = output_dir.is_dir() and any(output_dir.iterdir())
    if used and not (resume or overwrite):
        raise FileExistsError(f"the run folder {output_dir} is not empty: pass --resume to continue its run, or "
                              f"--overwrite to delete it and start again")
    if used and overwrite and not any((output_dir / name).exists() for name in _RUN_FILES):
        raise FileExistsError(f"--overwrite deletes run folders only, and {output_dir} holds none of "
                              f"{', '.join(_RUN_FILES)}: choose another --output-dir")
    if resume and latest_checkpoint(output_dir) is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {output_dir / 'checkpoints'}")
    accelerator.wait_for_everyone()  # every process has looked before the main one empties the folder
    if accelerator.is_main_process:
        if overwrite and used:
            shutil.rmtree(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()


def _prepare(accelerator: Accelerator, cfg: Recipe, task: Task) -> _Run:
    """Optimizer, schedule and training loader around the task's model, through `accelerator.prepare`."""
    model = task.model
    if accelerator.device.type == "cuda" and accelerator.num_processes > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if cfg.channels_last:  # speed switch: weights and 4-d inputs in NHWC
        model = model.to(memory_format=torch.channels_last)
        model.register_forward_pre_hook(lambda _, args: tuple(
            a.contiguous(memory_format=torch.channels_last) if torch.is_tensor(a) and a.ndim == 4 else a
            for a in args))
    # timm's EMA of the weights, copied from the plain module on its device (before `prepare` wraps it)
    ema = ModelEmaV3(model.to(accelerator.device), decay=cfg.ema.decay, use_warmup=cfg.ema.warmup) \
        if cfg.ema.decay else None
    optimizer = build_optimizer(cfg, model)
    schedule = build_schedule(cfg, optimizer)  # stepped once per update, so it is not prepared (see docs/training.md)
    # its own generator: creating an iterator (every epoch, and on resume) must not draw from the global RNG,
    # or a resumed run's dropout masks would drift from the uninterrupted run's
    loader = DataLoader(task.train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed),
                        collate_fn=task.collate_fn)
    if len(loader) == 0:
        raise ValueError(f"batch_size={cfg.batch_size} is larger than the training set ({len(task.train_set)})")
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    return _Run(model, optimizer, schedule, loader, ema)


def _record_recipe(accelerator: Accelerator, cfg: Recipe, output_dir: Path, resume: bool) -> None:
    """Write the resolved recipe to `config.yaml` (on resume, say which keys differ from the run's)."""
    path = output_dir / "config.yaml"
    recipe = cfg.to_dict()
    if resume and path.is_file():
        try:
            before, after = _flatten(yaml.safe_load(path.read_text()) or {}), _flatten(recipe)
        except (OSError, yaml.YAMLError, AttributeError) as e:
            raise CheckpointError(f"cannot resume: {path} cannot be read ({e})") from e
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if changed:
            accelerator.print(f"warning: resuming with a recipe that differs from {path} in {', '.join(changed)}")
    if accelerator.is_main_process:
        with _writing(path):
            path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    accelerator.init_trackers("train", config={k: v for k, v in recipe.items() if isinstance(v, (int, float, str))})


def _loop(accelerator: Accelerator, cfg: Recipe, task: Task, run: _Run, output_dir: Path) -> None:
    """Optimizer updates until `cfg.max_steps`, with logs and checkpoints; starts where `run` stands."""
    bar = tqdm(total=cfg.max_steps, initial=run.step, desc="train", disable=not accelerator.is_main_process)
    while run.step < cfg.max_steps:
        run.loader.set_epoch(run.epoch)
        if hasattr(task.train_set, "set_epoch"):
            task.train_set.set_epoch(run.epoch, cfg.seed)  # augmentation seeded by (seed, epoch, index)
        batches = accelerator.skip_first_batches(run.loader, run.batches) if run.batches else run.loader
        for batch in batches:
            run.model.train()
            if task.prepare_batch is not None:
                batch = task.prepare_batch(batch)
            with accelerator.accumulate(run.model):
                loss = task.loss(task.forward(run.model, batch), batch)
                accelerator.backward(loss)
                if cfg.optim.clip_grad and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(run.model.parameters(), cfg.optim.clip_grad)
                run.optimizer.step()
                run.optimizer.zero_grad()
            run.batches += 1
            if not accelerator.sync_gradients:
                continue
            run.schedule.step()
            run.step += 1
            if run.ema is not None:
                run.ema.update(accelerator.unwrap_model(run.model, keep_torch_compile=False), step=run.step)
            bar.update()
            if run.step % cfg.log_every == 0 or run.step == cfg.max_steps:
                logged = {"loss": accelerator.reduce(loss.detach(), "mean").item(),
                          "lr": run.schedule.get_last_lr()[0]}
                bar.set_postfix(loss=f"{logged['loss']:.4f}", lr=f"{logged['lr']:.2e}")
                accelerator.log(logged, step=run.step)
                run.train_log.append({"step": run.step, **logged})
            if cfg.eval_every and run.step % cfg.eval_every == 0 and run.step < cfg.max_steps:
                metrics = _evaluate(accelerator, task, accelerator.unwrap_model(run.model, keep_torch_compile=False),
                                    run.ema)
                run.eval_log.append(_eval_point(task, run.step, metrics))
                accelerator.log({k: v for k, v in run.eval_log[-1].items() if k != "step"}, step=run.step)
            if run.step % cfg.checkpoint_every == 0 or run.step == cfg.max_steps:
                _save_checkpoint(accelerator, run, output_dir, cfg.keep_checkpoints)
            if run.step >= cfg.max_steps:
                break
        else:
            run.epoch, run.batches = run.epoch + 1, 0
    bar.close()


def _evaluate(accelerator: Accelerator, task: Task, model: nn.Module, ema: Optional[ModelEmaV3]) -> Dict[str, Any]:
    """The task's metrics on the validation split (with EMA on, the scalar ones of the EMA weights too, `ema_`
    keys); the replicas' weights checked equal across processes."""
    model.eval()
    metrics = task.evaluate(accelerator, model, task.val_set)
    if ema is not None:
        averaged = task.evaluate(accelerator, ema.module, task.val_set)
        metrics.update({f"ema_{key}": value for key, value in averaged.items()
                        if isinstance(value, float) or (isinstance(value, int) and key != "eval_images")})
    # DDP keeps replicas equal; check it rather than trust it
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    checksums = accelerator.gather(checksum.to(accelerator.device)).cpu().tolist()
    if max(checksums) - min(checksums) > 1e-6 * max(1.0, abs(checksums[0])):
        raise RuntimeError(f"the model replicas diverged across processes: weight checksums {checksums}")
    metrics.update(num_processes=accelerator.num_processes, replica_checksums=checksums)
    return metrics


def _eval_point(task: Task, step: int, metrics: Dict[str, Any]) -> Dict[str, float]:
    return {"step": step, **{key: metrics[key] for key in (task.metric, f"ema_{task.metric}") if key in metrics}}


def _write_outputs(accelerator: Accelerator, task: Task, model: nn.Module, run: _Run, metrics: Dict[str, Any],
                   output_dir: Path) -> Dict[str, Any]:
    """The task's outputs (model folder, overlays, the metrics' arrays, ...), the EMA model folder `ema/`, the
    curves (`curves.json`, `curves.png`) and `metrics.json`, from the main process; returns the JSON metrics."""
    if accelerator.is_main_process:
        with _writing(output_dir):
            task.write_outputs(model, task.val_set, output_dir, metrics)
    metrics = {key: value for key, value in metrics.items() if not isinstance(value, np.ndarray)}  # in files
    if accelerator.is_main_process:
        if run.ema is not None:
            with _writing(output_dir / "ema"):
                task.save_model(run.ema.module.to(memory_format=torch.contiguous_format), output_dir / "ema")
        eval_log = [*run.eval_log, _eval_point(task, run.step, metrics)]
        with _writing(output_dir / "curves.png"):
            (output_dir / "curves.json").write_text(json.dumps({"train": run.train_log, "eval": eval_log}))
            plot_curves(run.train_log, eval_log, task.metric, output_dir / "curves.png")
        with _writing(output_dir / "metrics.json"):
            (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    accelerator.wait_for_everyone()
    return metrics


# ---------------------------------------------------------------------------------------------------- checkpoints
@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Name `path` in any error raised while writing it (a full disk, a read-only folder, ...)."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - safetensors and torch raise their own types for I/O failures
        raise OSError(f"cannot write {path}: {e}") from e


def _rng_state(run: _Run) -> Dict[str, Any]:
    """This process's random generators as JSON-ready values."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(state), gauss],
            "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state().tolist(),
            "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []}


def _set_rng_state(state: Dict[str, Any]) -> None:
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _save_checkpoint(accelerator: Accelerator, run: _Run, output_dir: Path, keep: int) -> None:
    root = output_dir / "checkpoints"
    tmp = root / f"tmp_step_{run.step}"
    if accelerator.is_main_process:
        for leftover in root.glob("tmp_step_*"):  # this one, or one a crash left half-written
            shutil.rmtree(leftover, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    path = tmp / f"rng_state_{accelerator.process_index}.json"
    with _writing(path):
        path.write_text(json.dumps(_rng_state(run)))
    if accelerator.is_main_process:
        with _writing(tmp / "model.safetensors"):
            save_model(accelerator.unwrap_model(run.model, keep_torch_compile=False), str(tmp / "model.safetensors"))
        if run.ema is not None:
            with _writing(tmp / "ema.safetensors"):
                save_model(run.ema.module, str(tmp / "ema.safetensors"))
        with _writing(tmp / "optimizer.pt"):
            torch.save(run.optimizer.state_dict(), tmp / "optimizer.pt")
        state = {"step": run.step, "epoch": run.epoch, "batches": run.batches,
                 "num_processes": accelerator.num_processes, "schedule": run.schedule.state_dict(),
                 "train_log": run.train_log, "eval_log": run.eval_log}
        with _writing(tmp / "trainer_state.json"):
            (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp.rename(root / f"step_{run.step}")  # atomic: a checkpoint folder is complete or absent
        for old in _checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _read(path: Path, load: Callable[[Path], Any], accelerator: Accelerator, partial: bool = False,
          required: bool = True) -> Any:
    """`load(path)`, or a `CheckpointError` naming the file (with `partial` and not `required`: a warning, None)."""
    try:
        return load(path)
    except Exception as e:  # noqa: BLE001 - any failure to read a part means the resume would not be exact
        reason = "is missing" if not path.exists() else f"cannot be read ({str(e).splitlines()[0] if str(e) else e!r})"
        if required or not partial:
            hint = "" if required else "; --resume-partial continues without it"
            raise CheckpointError(f"cannot resume: {path} {reason}{hint}") from e
        accelerator.print(f"warning: {path} {reason}; --resume-partial: continuing without it, so the run will not "
                          f"match an uninterrupted one")
        return None


def _resume(accelerator: Accelerator, run: _Run, output_dir: Path, partial: bool) -> None:
    """Restore model, optimizer, schedule, position and RNG states from the newest checkpoint (no pickle read)."""
    checkpoint = latest_checkpoint(output_dir)
    state = _read(checkpoint / "trainer_state.json", lambda p: json.loads(p.read_text()), accelerator)
    _read(checkpoint / "model.safetensors",
          lambda p: load_model(accelerator.unwrap_model(run.model, keep_torch_compile=False), p), accelerator)
    if run.ema is not None:
        _read(checkpoint / "ema.safetensors", lambda p: load_model(run.ema.module, p), accelerator)
    _read(checkpoint / "optimizer.pt",
          lambda p: run.optimizer.load_state_dict(torch.load(p, map_location="cpu", weights_only=True)),
          accelerator, partial, required=False)
    try:
        run.schedule.load_state_dict(state["schedule"])
        run.step, run.epoch, run.batches = int(state["step"]), int(state["epoch"]), int(state["batches"])
        run.train_log, run.eval_log = list(state.get("train_log", [])), list(state.get("eval_log", []))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"cannot resume: {checkpoint / 'trainer_state.json'} lacks {e}") from None
    if run.batches >= len(run.loader):
        run.epoch, run.batches = run.epoch + 1, 0
    if state.get("num_processes") != accelerator.num_processes and not partial:
        raise CheckpointError(f"cannot resume: {checkpoint} was written by {state.get('num_processes')} processes, "
                              f"this run has {accelerator.num_processes}; --resume-partial continues anyway")
    _read(checkpoint / f"rng_state_{accelerator.process_index}.json",
          lambda p: _set_rng_state(json.loads(p.read_text())), accelerator, partial, required=False)
    accelerator.print(f"resumed from {checkpoint} at step {run.step}")


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
