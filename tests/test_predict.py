"""sr-models-predict: a saved model over a folder, a glob or a file; train-id, Cityscapes, colour and overlay PNGs."""
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import sr_models  # noqa: F401
from sr_models.data.embedded import EMBEDDED
from sr_models.data.images import read_image
from sr_models.data.metadata import CITYSCAPES, CITYSCAPES_LABEL_IDS
from sr_models.data.transforms import image_to_tensor
from sr_models.hf import save_pretrained
from sr_models.inference import segment
from sr_models.predict import main

NAMES = ["aachen/aachen_000000_000019_leftImg8bit.png", "bremen/bremen_000001_000019_leftImg8bit.png"]


def _saved_model(folder, info):
    torch.manual_seed(0)
    model = timm.create_model("srnet_resnet18_d8", backbone="resnet10t", channels=32, num_classes=info.num_classes,
                              pretrained_cfg_overlay=dict(label_names=list(info.label_names), mean=info.mean,
                                                          std=info.std, input_size=(3, 32, 32)))
    save_pretrained(model.eval(), folder)
    return folder


@pytest.fixture(scope="module")
def city_model(tmp_path_factory):
    return _saved_model(tmp_path_factory.mktemp("model"), CITYSCAPES)


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    for name, size in zip(NAMES, [(40, 56), (48, 40)]):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), np.uint8)).save(tmp_path / "in" / name)
    return tmp_path / "in"


def test_folder_in_cityscapes_format_writes_label_ids_colours_and_overlays(city_model, images, tmp_path):
    main(["--model", str(city_model), "--input", str(images), "--output", str(tmp_path / "out"),
          "--format", "cityscapes", "--mode", "slide", "--crop-size", "32"])
    for name in NAMES:
        city, file = name.split("/")
        labels = Image.open(tmp_path / "out" / "labels" / city / file.replace("leftImg8bit", "labelIds"))
        size = Image.open(images / name).size
        assert labels.mode == "L" and labels.size == size
        assert set(np.unique(np.asarray(labels))) <= set(CITYSCAPES_LABEL_IDS)
        for kind in ("colour", "overlay"):
            written = Image.open(tmp_path / "out" / kind / name)
            assert written.mode == "RGB" and written.size == size


def test_train_ids_are_the_models_segmentation(city_model, images, tmp_path):
    """Whole-image train ids from a glob equal `segment()` on the image normalised with the model's statistics."""
    main(["--model", str(city_model), "--input", str(images / "*" / "*.png"), "--output", str(tmp_path / "out"),
          "--no-colour", "--no-overlay"])
    model = timm.create_model(f"local-dir:{city_model}", pretrained=True).eval()
    mean, std = torch.tensor(CITYSCAPES.mean).view(3, 1, 1), torch.tensor(CITYSCAPES.std).view(3, 1, 1)
    for name in NAMES:
        pixels = (image_to_tensor(read_image(images / name)) - mean) / std
        expected = segment(model, pixels[None])[0].numpy()
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "labels" / name)), expected)
    assert not (tmp_path / "out" / "colour").exists() and not (tmp_path / "out" / "overlay").exists()


def test_one_file_multiscale_with_flip(city_model, images, tmp_path):
    main(["--model", str(city_model), "--input", str(images / NAMES[0]), "--output", str(tmp_path / "out"),
          "--mode", "multiscale", "--scales", "1,1.5"])
    assert (tmp_path / "out" / "labels" / NAMES[0].split("/")[1]).is_file()


def _error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    lines = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()  # the progress bar may come first
    errors = [line for line in lines if "error" in line]
    assert exit_info.value.code == 1 and len(errors) == 1 and lines[-1].startswith("error: ")
    return lines[-1]


def test_errors_are_one_line_naming_the_input(city_model, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"not a png")
    out = ["--output", str(tmp_path / "out")]
    message = _error(capsys, ["--model", str(city_model), "--input", str(images), *out])
    assert "cannot read image" in message and "broken.png" in message
    assert "(--input)" in _error(capsys, ["--model", str(city_model), "--input", str(tmp_path / "none"), *out])
    assert "(--model)" in _error(capsys, ["--model", str(tmp_path / "none"), "--input", str(images), *out])
    assert "--mode 'tiles'" in _error(capsys, ["--model", str(city_model), "--input", str(images), "--mode", "tiles",
                                               *out])
    embedded = _saved_model(tmp_path / "embedded", EMBEDDED)
    assert "19 Cityscapes classes" in _error(capsys, ["--model", str(embedded), "--input", str(images),
                                                      "--format", "cityscapes", *out])


def test_module_entry_point_runs(city_model, images, tmp_path):
    result = subprocess.run([sys.executable, "-m", "sr_models.predict", "--model", str(city_model), "--input",
                             str(images), "--output", str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 image(s) segmented" in result.stdout and len(list((tmp_path / "out" / "overlay").rglob("*.png"))) == 2
