"""Whole / sliding-window / multi-scale + flip inference."""
import pytest
import timm
import torch

import sr_models  # noqa: F401
from sr_models.inference import predict_multiscale, predict_sliding, predict_whole, segment


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return timm.create_model("srnet_resnet18_d8", num_classes=4, backbone="resnet10t", channels=32).eval()


class ShapeRecorder(torch.nn.Module):
    """Wraps a model and records the spatial size of every input it sees."""

    def __init__(self, model):
        super().__init__()
        self.model, self.sizes = model, []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return self.model(x)


def test_sliding_equals_whole_when_one_tile_covers_the_image(model):
    x = torch.randn(2, 3, 64, 80)
    torch.testing.assert_close(predict_sliding(model, x, crop_size=(64, 80)), predict_whole(model, x))


def test_sliding_tiles_never_exceed_the_crop_and_cover_the_image(model):
    recorder = ShapeRecorder(model).eval()
    probs = predict_sliding(recorder, torch.randn(1, 3, 97, 161), crop_size=48)
    assert probs.shape == (1, 4, 97, 161)
    assert set(recorder.sizes) == {(48, 48)} and len(recorder.sizes) == 3 * 5  # stride 32 = 2/3 of the crop
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 97, 161))


def test_small_images_are_padded_to_the_crop(model):
    recorder = ShapeRecorder(model).eval()
    assert predict_sliding(recorder, torch.randn(1, 3, 40, 50), crop_size=64).shape == (1, 4, 40, 50)
    assert recorder.sizes == [(64, 64)]


def test_flip_averaging_is_flip_equivariant(model):
    x = torch.randn(1, 3, 64, 72)
    probs = predict_multiscale(model, x, scales=(1.0,), flip=True)
    flipped = predict_multiscale(model, x.flip(-1), scales=(1.0,), flip=True)
    torch.testing.assert_close(flipped, probs.flip(-1), atol=1e-5, rtol=1e-5)


def test_multiscale_averages_scaled_views_back_at_input_size(model):
    recorder = ShapeRecorder(model).eval()
    probs = predict_multiscale(recorder, torch.randn(1, 3, 64, 96), scales=(0.5, 1.0, 1.5), flip=True)
    assert probs.shape == (1, 4, 64, 96)
    assert sorted(set(recorder.sizes)) == [(32, 48), (64, 96), (96, 144)] and len(recorder.sizes) == 6
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 64, 96))


@pytest.mark.parametrize("mode, kwargs", [("whole", {}), ("slide", dict(crop_size=48)),
                                          ("multiscale", dict(scales=(0.75, 1.0)))])
def test_segment_returns_a_label_map(model, mode, kwargs):
    labels = segment(model, torch.randn(1, 3, 64, 72), mode=mode, **kwargs)
    assert labels.shape == (1, 64, 72) and labels.dtype == torch.long and int(labels.max()) < 4


def test_errors_are_clear(model):
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match="needs crop_size"):
        segment(model, x, mode="slide")
    with pytest.raises(ValueError, match="mode='tiles'"):
        segment(model, x, mode="tiles")
    with pytest.raises(ValueError, match="4-D"):
        predict_whole(model, x[0])
    model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            predict_whole(model, x)
    finally:
        model.eval()
