"""transformers' image pipelines on sr-models folders: the training decoding (issue 16 item 6) and the fast
inference default of `sr_models.inference` (issue 11 item 6); other models keep transformers' own behaviour."""
import functools
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from transformers import AutoImageProcessor, ViTConfig, ViTForImageClassification, ViTImageProcessor, pipeline
from transformers.pipelines.image_classification import ImageClassificationPipeline

import sr_models
from sr_models import inference
from sr_models.data import read_image
from sr_models.hf.detection import save_detector
from test_images import _png16

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("pipelines")
    seg = timm.create_model("srnet_resnet18_d8", num_classes=5, backbone="resnet10t", channels=32).eval()
    cls = timm.create_model("sr_resnet18", num_classes=4).eval()
    det = sr_models.create_detector("maskrcnn_sr_resnet14t_fpn", num_classes=3, min_size=64, max_size=80,
                                    box_score_thresh=0.0, box_detections_per_img=4).eval()
    sr_models.save_pretrained(seg, root / "seg")
    sr_models.save_pretrained(cls, root / "cls")
    save_detector(det, root / "det", {1: "car", 2: "bus"})
    return {"image-segmentation": root / "seg", "image-classification": root / "cls",
            "object-detection": root / "det"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A 16-bit grey PNG, an RGBA PNG (transparent: compositing would whiten it) and their 8-bit RGB decodings."""
    root = tmp_path_factory.mktemp("images")
    grey = RNG.integers(0, 65536, (40, 48, 1), dtype=np.uint16)
    rgba = RNG.integers(0, 256, (40, 48, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    return {str(_png16(root / "grey16.png", grey)): np.repeat((grey >> 8).astype(np.uint8), 3, axis=2),
            str(root / "rgba.png"): rgba[..., :3]}


@pytest.mark.parametrize("task", ["image-segmentation", "image-classification", "object-detection"])
def test_pipelines_decode_paths_and_pil_images_as_training(task, folders, images):
    pipe = pipeline(task, model=str(folders[task]))
    processor = AutoImageProcessor.from_pretrained(folders[task])
    for path, rgb8 in images.items():
        expected = processor(Image.fromarray(rgb8), return_tensors="pt").pixel_values
        torch.testing.assert_close(processor(read_image(path), return_tensors="pt").pixel_values, expected)
        for given in (path, Image.open(path)):
            torch.testing.assert_close(pipe.preprocess(given)["pixel_values"], expected)
        assert pipe(path) == pipe(Image.fromarray(rgb8))  # the same answer end to end


def test_urls_are_fetched_with_a_timeout_and_decoded_as_training(folders, images):
    path, rgb8 = next(iter(images.items()))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(Path(path).parent))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        pipe = pipeline("image-segmentation", model=str(folders["image-segmentation"]))
        expected = pipe.preprocess(Image.fromarray(rgb8))["pixel_values"]
        torch.testing.assert_close(pipe.preprocess(f"{url}/{Path(path).name}", timeout=5)["pixel_values"], expected)
        with pytest.raises(OSError, match=f"cannot read image {url}/missing.png: .*404"):
            pipe(f"{url}/missing.png", timeout=5)
        server.shutdown()


def test_a_stalled_url_fails_after_the_timeout_even_when_none_is_given(folders, monkeypatch):
    pipe = pipeline("image-segmentation", model=str(folders["image-segmentation"]))
    with socket.socket() as stalled:  # accepts connections (the kernel's backlog) and never answers
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(4)
        url = f"http://127.0.0.1:{stalled.getsockname()[1]}/street.png"
        monkeypatch.setenv("SR_MODELS_HUB_TIMEOUT", "0.5")
        for kwargs in ({"timeout": 0.5}, {}):
            started = time.monotonic()
            with pytest.raises(OSError, match=f"cannot read image {url}"):
                pipe(url, **kwargs)
            assert time.monotonic() - started < 30


def test_other_models_keep_transformers_pipeline_unchanged(images):
    tiny = ViTConfig(image_size=32, patch_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, num_labels=3)
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    pipe = pipeline("image-classification", model=ViTForImageClassification(tiny).eval(), image_processor=processor)
    assert isinstance(pipe, ImageClassificationPipeline)
    for path in images:
        torch.testing.assert_close(pipe.preprocess(path)["pixel_values"],
                                   ImageClassificationPipeline.preprocess(pipe, path)["pixel_values"])
    with pytest.raises(ValueError, match="bf16=True applies to the sr-models segmenters and classifiers, not to "
                                         "ViTForImageClassification"):
        pipe(next(iter(images)), bf16=True)


@pytest.mark.parametrize("task", ["image-segmentation", "image-classification"])
def test_pipelines_run_sr_models_with_the_inference_default(task, folders, images, monkeypatch):
    seen = []
    pipe = pipeline(task, model=str(folders[task]))
    pipe.model.register_forward_hook(lambda module, args, kwargs, out: seen.append(
        (torch.is_autocast_enabled("cpu"), kwargs["pixel_values"].is_contiguous(memory_format=torch.channels_last),
         out.logits.dtype)), with_kwargs=True)
    path = next(iter(images))
    monkeypatch.setattr(inference, "bf16_is_native", lambda: True)
    native = pipe(path)
    forced = pipe(path, bf16=False)
    monkeypatch.setattr(inference, "bf16_is_native", lambda: False)
    emulated = pipe(path)
    # the model runs under bf16 autocast only where bf16 is native and not refused; the pipeline sees float32 logits
    assert seen == [(True, True, torch.bfloat16), (False, True, torch.float32), (False, True, torch.float32)]
    assert forced == emulated
    assert type(native) is type(forced) and len(native) == len(forced)


def test_an_undecodable_file_is_refused_naming_it(folders, tmp_path):
    Image.new("F", (4, 4)).save(tmp_path / "depth.tif")
    pipe = pipeline("image-segmentation", model=str(folders["image-segmentation"]))
    with pytest.raises(ValueError, match=f"{tmp_path / 'depth.tif'}: 32-bit float images \\(mode F\\)"):
        pipe(str(tmp_path / "depth.tif"))
    with pytest.raises(OSError, match=f"cannot read image {tmp_path / 'missing.png'}: .*No such file"):
        pipe(str(tmp_path / "missing.png"))
