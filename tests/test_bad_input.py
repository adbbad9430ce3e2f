"""Bad input to `sr_models.inference`: one-line errors naming the argument, empty batches answered (issue 16)."""
import pytest
import timm
import torch
from torch import nn

import sr_models  # noqa: F401
from sr_models.inference import predict_multiscale, predict_sliding, predict_whole, segment


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return timm.create_model("srnet_resnet18_d8", num_classes=4, backbone="resnet10t", channels=32).eval()


X = torch.randn(1, 3, 64, 64)


def test_a_classifier_is_not_a_segmenter():
    classifier = timm.create_model("sr_resnet18", num_classes=5).eval()
    with pytest.raises(ValueError, match=r"^segment\(\) needs a segmenter; got sr_resnet18 \(an image classifier\)$"):
        segment(classifier, X)
    headless = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()  # no registry name
    with pytest.raises(ValueError, match=r"predict_whole\(\) needs a segmenter .* got Sequential with output \(1, 2\)"):
        predict_whole(headless, X)


@pytest.mark.parametrize("images, error, message", [
    ((X * 255).to(torch.uint8), TypeError, "float images normalised .* got dtype torch.uint8"),
    (X[0], ValueError, r"4-D \(N, C, H, W\) image batch, got shape \(3, 64, 64\): add a batch dimension"),
    (X[:, :1], ValueError, r"takes 3-channel images, got 1 channels"),
    ([[0.0]], TypeError, "expects images as a torch.Tensor"),
])
def test_images_are_checked(model, images, error, message):
    with pytest.raises(error, match=message):
        segment(model, images)


def test_empty_batches_give_empty_results(model):
    empty = torch.zeros(0, 3, 40, 48)
    assert predict_whole(model, empty).shape == (0, 4, 40, 48)
    assert predict_sliding(model, empty, 32).shape == (0, 4, 40, 48)
    assert predict_multiscale(model, empty).shape == (0, 4, 40, 48)
    labels = segment(model, empty, mode="slide", crop_size=32)
    assert labels.shape == (0, 40, 48) and labels.dtype == torch.long
    assert model(empty).shape == (0, 4, 40, 48)  # the network itself takes an empty batch


@pytest.mark.parametrize("kwargs, message", [
    (dict(crop_size=(64,)), r"crop_size=\(64,\) must be a positive int or a pair \(height, width\)"),
    (dict(crop_size=0), "crop_size=0 must be a positive int"),
    (dict(crop_size=(32.5, 32)), r"crop_size=\(32.5, 32\) must be a positive int"),
    (dict(crop_size=4), r"crop_size=\(4, 4\) is 4x4, smaller than srnet_resnet18_d8's minimum input 8x8"),
    (dict(crop_size=32, stride=0), "stride=0 must be a positive int"),
    (dict(crop_size=32, stride=(16, 40)), r"stride=\(16, 40\) must not exceed crop_size=\(32, 32\)"),
])
def test_sliding_arguments_are_checked(model, kwargs, message):
    with pytest.raises(ValueError, match=message + r".*\(predict_sliding\(\)\)$"):
        predict_sliding(model, X, **kwargs)


@pytest.mark.parametrize("scales, message", [
    ((), r"scales=\(\) must be a non-empty sequence"),
    (1.0, "scales=1.0 must be a non-empty sequence"),
    ((1.0, 0), r"must all be positive finite numbers"),
    ((1.0, float("nan")), r"must all be positive finite numbers"),
    ((0.05,), r"the 64x64 image at scale 0.05 is 3x3, smaller than srnet_resnet18_d8's minimum input 8x8"),
])
def test_scales_are_checked(model, scales, message):
    with pytest.raises(ValueError, match=message):
        segment(model, X, mode="multiscale", scales=scales)


def test_mode_and_eval_are_checked_before_anything_runs(model):
    with pytest.raises(ValueError, match=r"mode='tiles' is not one of 'whole', 'slide', 'multiscale' \(segment\(\)\)"):
        segment(model, X, mode="tiles")
    model.train()
    try:
        with pytest.raises(ValueError, match=r"predict_sliding\(\) needs the model in eval mode"):
            predict_sliding(model, X, 32)
    finally:
        model.eval()
