"""The built wheel is a self-contained package: installed into a bare folder, its console scripts train a recipe
given by name and publish the run to the (loopback) Hub from a directory outside the repository."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import LoopbackHub

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_wheel_test_token"


def test_recipes_and_card_templates_have_one_copy_in_the_package_and_recipes_resolve_by_name(tmp_path):
    from sr_models.model_card import TEMPLATES
    from sr_models.recipes import RECIPES, list_recipes, recipe_path
    from sr_models.training import load_config

    assert (REPO / "train" / "configs").resolve() == RECIPES and (REPO / "model_cards").resolve() == TEMPLATES
    assert "demo_embedded" in list_recipes() and len(list_recipes()) == len(list(RECIPES.glob("*.yaml")))
    assert recipe_path("demo_embedded") == recipe_path("demo_embedded.yaml") == RECIPES / "demo_embedded.yaml"
    local = tmp_path / "demo_embedded.yaml"
    local.write_text("task: semantic-segmentation\n")
    assert recipe_path(local) == local  # a path that exists wins over the packaged name
    with pytest.raises(FileNotFoundError, match=r"config srnet_r9000 is neither a file nor a packaged recipe "
                                                 r"\(packaged: .*demo_embedded"):
        recipe_path("srnet_r9000")
    assert load_config("demo_embedded").task == "semantic-segmentation"  # the embedded data needs no download


def _run(command, cwd, env):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command[0]}: {result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_wheel_installed_without_the_checkout_trains_a_packaged_recipe_and_publishes_it(tmp_path):
    dist, target, outside = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    outside.mkdir()
    _run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist), str(REPO)], REPO,
         os.environ)
    (wheel,) = dist.glob("sr_models-*.whl")
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
         outside, os.environ)
    assert {p.name for p in (target / "sr_models" / "configs").glob("*.yaml")} == {
        p.name for p in (REPO / "train" / "configs").glob("*.yaml")}
    assert {p.name for p in (target / "sr_models" / "model_cards").iterdir()} == {
        p.name for p in (REPO / "model_cards").glob("*.md")}

    hub = LoopbackHub(TOKEN, tmp_path / "hub").start()
    env = {**os.environ, "PYTHONPATH": str(target), "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1",
           "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    try:
        where = _run([sys.executable, "-c", "import sr_models; print(sr_models.__file__)"], outside, env)
        assert Path(where.stdout.strip()).is_relative_to(target)  # the installed copy, not the checkout
        scripts = target / "bin"
        for name in ("sr-models-demo", "sr-models-publish", "sr-models-summary", "sr-models-train"):
            assert _run([str(scripts / name), "--help"], outside, env).stdout.startswith("usage:")
        _run([str(scripts / "sr-models-train"), "--config", "demo_embedded", "--output-dir", "run",
              "--max-steps", "2", "--set", "model.args.channels=32", "--set", "data.crop_size=[32,32]",
              "--set", "data.embedded.num_images=4", "--set", "batch_size=2", "--set", "checkpoint_every=2",
              "--set", "eval.max_images=2", "--set", "overlays=0"], outside, env)
        assert json.loads((outside / "run" / "metrics.json").read_text())["steps"] == 2
        published = _run([str(scripts / "sr-models-publish"), "run", "--repo-id", "wheel-org/demo"], outside, env)
        assert "published wheel-org/demo at" in published.stdout
        tree = hub.repos["wheel-org/demo"].tree(hub.repos["wheel-org/demo"].refs["main"])
        assert set(tree) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}
        assert "library_name: sr-models" in tree["README.md"].content.decode()
    finally:
        hub.stop()
