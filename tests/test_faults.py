"""Bad input and faults on the training side: recipes and overrides refused up front, run folders never mixed,
resume never unpickles and names the broken file, every command line answers with one `error:` line."""
import errno
import json
import os
import pickle
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import sr_models  # noqa: F401
from sr_models.cli_errors import describe_error
from sr_models.training import CheckpointError, RecipeError, cli, demo, load_config, recipe_from_dict, train
from sr_models.training.segmentation import build_segmentation_task

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "task": "semantic-segmentation",
    "model": {"name": "srnet_resnet18_d8", "args": {"backbone": "resnet10t", "channels": 32}},
    "data": {"name": "embedded", "crop_size": [32, 32], "embedded": {"image_size": 32, "num_images": 8}},
    "batch_size": 4,
    "max_steps": 2,
    "checkpoint_every": 1,
    "keep_checkpoints": 2,
    "eval": {"max_images": 2},
    "overlays": 0,
}


def _recipe_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


# ------------------------------------------------------------------------------------------ recipes and overrides
def test_typo_in_a_recipe_key_is_refused_with_the_valid_keys(tmp_path):
    path = _recipe_file(tmp_path, bach_size=4)
    with pytest.raises(RecipeError, match=rf"unknown key 'bach_size' in {path}; valid keys: task, .*batch_size"):
        load_config(path)
    with pytest.raises(RecipeError, match=r"unknown key 'eval.mod' .* valid keys in eval: mode, max_images"):
        recipe_from_dict({**TINY, "eval": {"mod": "slide"}})


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=0.1", r"unknown key 'optim.lrr' in --set optim.lrr=0.1; valid keys in optim: name, lr,"),
    ("optim.lr=[1,", r"--set optim.lr=\[1,: not valid YAML"),
    ("optim.lr=fast", r"optim.lr='fast' must be a number > 0 \(--set optim.lr=fast\)"),
    ("eval.mode=slid", r"eval.mode='slid' must be one of 'whole', 'slide', 'multiscale' \(--set eval.mode=slid\)"),
    ("data.crop_size=[32]", r"data.crop_size=\[32\] must be a list of 2 items"),
    ("max_steps", r"--set max_steps: expected key.sub=value"),
    ("model.args.contxt=sr", r"refused by srnet_resnet18_d8: .*unexpected keyword argument 'contxt'"),
    ("model.args.num_classes=3", r"model.args.num_classes is set by the task \(the data set's number of classes\)"),
])
def test_bad_overrides_are_refused_naming_the_override(tmp_path, override, message):
    with pytest.raises(RecipeError, match=message):
        load_config(_recipe_file(tmp_path), [override])


def test_a_valid_override_reaches_a_typed_section(tmp_path):
    recipe = load_config(_recipe_file(tmp_path), ["data.embedded={num_images: 4}", "loss.ohem_thresh=0.7"])
    assert recipe.data.embedded.num_images == 4 and recipe.data.embedded.image_size == 64
    assert recipe.loss.ohem_thresh == 0.7 and recipe.to_dict()["loss"]["ohem_thresh"] == 0.7


# ------------------------------------------------------------------------------------------------------ run folders
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny finished run: checkpoints at steps 1 and 2."""
    run = tmp_path_factory.mktemp("runs") / "run"
    train(recipe_from_dict(TINY), run, build_segmentation_task)
    return run


def test_a_used_run_folder_is_refused_and_overwrite_starts_clean(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "notes.txt").write_text("from an earlier run")
    with pytest.raises(FileExistsError, match=r"not empty: pass --resume .* or --overwrite"):
        train(recipe_from_dict(TINY), run, build_segmentation_task)
    assert (run / "notes.txt").exists() and (run / "checkpoints" / "step_2").is_dir()  # untouched
    train(recipe_from_dict({**TINY, "max_steps": 1}), run, build_segmentation_task, overwrite=True)
    assert not (run / "notes.txt").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_1"]
    assert json.loads((run / "metrics.json").read_text())["steps"] == 1
    elsewhere = tmp_path / "not_a_run"
    elsewhere.mkdir()
    (elsewhere / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="--overwrite deletes run folders only"):
        train(recipe_from_dict(TINY), elsewhere, build_segmentation_task, overwrite=True)
    assert (elsewhere / "thesis.tex").exists()


# ----------------------------------------------------------------------------------------------------------- resume
class _PlantedPayload:
    """Unpickling this object creates the file `marker`: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _resumable_copy(finished_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "checkpoints" / "step_2")  # resume from step 1 of 2
    return run


def test_a_planted_pickle_is_never_unpickled(tmp_path, finished_run):
    run = _resumable_copy(finished_run, tmp_path)
    checkpoint = run / "checkpoints" / "step_1"
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "model.safetensors", "optimizer.pt", "rng_state_0.json", "trainer_state.json"]  # what resume reads
    marker = tmp_path / "code_ran"
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "scheduler.bin"):  # Accelerate's pickles
        (checkpoint / name).write_bytes(pickle.dumps(_PlantedPayload(marker)))
    train(recipe_from_dict(TINY), run, build_segmentation_task, resume=True)
    assert not marker.exists()
    assert json.loads((run / "metrics.json").read_text())["steps"] == 2

    run = _resumable_copy(finished_run, tmp_path / "second")
    optimizer = run / "checkpoints" / "step_1" / "optimizer.pt"
    optimizer.write_bytes(pickle.dumps(_PlantedPayload(marker)))
    with pytest.raises(CheckpointError, match=rf"{optimizer} cannot be read"):
        train(recipe_from_dict(TINY), run, build_segmentation_task, resume=True)
    assert not marker.exists()


@pytest.mark.parametrize("part, damage", [
    ("model.safetensors", "truncate"),
    ("trainer_state.json", "delete"),
    ("optimizer.pt", "garbage"),
    ("rng_state_0.json", "delete"),
])
def test_a_broken_checkpoint_part_stops_the_resume_naming_the_file(tmp_path, finished_run, part, damage):
    run = _resumable_copy(finished_run, tmp_path)
    path = run / "checkpoints" / "step_1" / part
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        path.unlink()
    reason = "is missing" if damage == "delete" else "cannot be read"
    with pytest.raises(CheckpointError, match=rf"cannot resume: {path} {reason}"):
        train(recipe_from_dict(TINY), run, build_segmentation_task, resume=True)
    assert not (run / "metrics.json").read_text() == ""  # the earlier run's outputs are still there


def test_resume_partial_continues_without_the_optimizer_with_a_warning(tmp_path, finished_run, capsys):
    run = _resumable_copy(finished_run, tmp_path)
    (run / "checkpoints" / "step_1" / "optimizer.pt").unlink()
    train(recipe_from_dict(TINY), run, build_segmentation_task, resume=True, resume_partial=True)
    out = capsys.readouterr().out
    assert "optimizer.pt is missing; --resume-partial: continuing without it" in out and "at step 1" in out
    assert json.loads((run / "metrics.json").read_text())["steps"] == 2


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    def no_space(model, filename, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("sr_models.training.engine.save_model", no_space)
    with pytest.raises(OSError) as raised:
        train(recipe_from_dict(TINY), tmp_path / "run", build_segmentation_task)
    where = tmp_path / "run" / "checkpoints" / "tmp_step_1" / "model.safetensors"
    assert describe_error(raised.value) == f"cannot write {where}: [Errno 28] No space left on device"


# ---------------------------------------------------------------------------------------------------- command lines
def test_training_cli_errors_are_one_line_and_exit_1(tmp_path):
    recipe = _recipe_file(tmp_path, bach_size=4)
    result = _cli(str(REPO / "train" / "seg.py"), "--config", str(recipe), "--output-dir", "run", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: unknown key 'bach_size' in {recipe}; valid keys: " \
        "task, model, data, seed, optim, schedule, loss, batch_size, grad_accum_steps, max_steps, checkpoint_every, " \
        "keep_checkpoints, log_every, num_workers, eval, eval_every, overlays, ema, mixup, channels_last, compile, " \
        "mixed_precision"
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_error_with_its_traceback(tmp_path):
    argv = ["--config", str(_recipe_file(tmp_path, bach_size=4)), "--output-dir", str(tmp_path / "run"), "--debug"]
    with pytest.raises(RecipeError, match="unknown key 'bach_size'"):  # not turned into one line and exit 1
        cli.main("semantic-segmentation", argv)


def test_eval_mode_typo_is_refused_before_training(tmp_path, capsys):
    argv = ["--config", str(_recipe_file(tmp_path)), "--output-dir", str(tmp_path / "run"), "--set", "eval.mode=slid"]
    with pytest.raises(SystemExit) as exited:
        cli.main("semantic-segmentation", argv)
    assert exited.value.code == 1
    assert capsys.readouterr().err == ("error: eval.mode='slid' must be one of 'whole', 'slide', 'multiscale' "
                                       "(--set eval.mode=slid)\n")
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_demo_and_publish_answer_with_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["demo", "--output-dir", str(tmp_path / "demo"), "--set", "optim.lrr=1"])
    with pytest.raises(SystemExit) as exited:
        demo.main()
    assert exited.value.code == 1 and capsys.readouterr().err == (
        "error: unknown key 'optim.lrr' in --set optim.lrr=1; valid keys in optim: name, lr, momentum, weight_decay, "
        "nesterov, filter_bias_and_bn, layer_decay, clip_grad\n")
    monkeypatch.setattr(sys, "argv", ["publish.py", str(tmp_path / "absent"), "--repo-id", "me/x", "--dry-run"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / "hub" / "publish.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert str(tmp_path / "absent") in err


def test_a_label_map_of_the_wrong_size_names_its_file(tmp_path):
    import numpy as np
    from PIL import Image

    from sr_models.data import build_dataset

    for folder, size in (("val", (48, 32)), ("valannot", (40, 32))):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((size[1], size[0], 3 if folder == "val" else 1), np.uint8).squeeze()).save(
            tmp_path / folder / "0001.png")
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "val", train=False)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'valannot' / '0001.png'}: the label map is 40x32 but its "
                                         r"image is 48x32"):
        dataset[0]


class _UnreadableImages(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise OSError(f"cannot read image /data/{index}.png: truncated")


def test_an_unreadable_image_in_a_loader_worker_is_reported_with_its_file():
    loader = torch.utils.data.DataLoader(_UnreadableImages(), num_workers=1)
    with pytest.raises(OSError) as raised:
        next(iter(loader))
    assert describe_error(raised.value) == "cannot read image /data/0.png: truncated"


def test_a_malformed_command_line_is_one_error_line_with_exit_1(tmp_path):
    for module, args in (("sr_models.training.cli", ["--config", "demo_embedded", "--output-dir", str(tmp_path),
                                                     "--bogus"]),
                         ("sr_models.training.demo", ["--task", "bogus"]),
                         ("sr_models.predict", [])):
        result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (module, result.stderr)
        assert "(command line;" in lines[0]
