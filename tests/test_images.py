"""One image decoding for training, the image processor and the pipelines (issue 16 item 6): 16-bit images scaled,
alpha dropped everywhere, float images in [0, 1] warned about like transformers' processors."""
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from sr_models.data import decode_array, decode_image, read_image
from sr_models.data.metadata import CITYSCAPES
from sr_models.data.segmentation import FilePairDataset, label_lut
from sr_models.data.transforms import image_to_tensor
from sr_models.hf import SRNetImageProcessor

RNG = np.random.default_rng(0)


def _png16(path, values):
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA by the channel count of `values` (H, W, C)), written by hand:
    Pillow cannot write 16-bit colour PNGs."""
    h, w, c = values.shape
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def _normalised(rgb8: np.ndarray) -> torch.Tensor:
    mean, std = torch.tensor(CITYSCAPES.mean)[:, None, None], torch.tensor(CITYSCAPES.std)[:, None, None]
    return (torch.from_numpy(rgb8).permute(2, 0, 1).float() / 255 - mean) / std


@pytest.fixture(scope="module")
def processor():
    return SRNetImageProcessor(image_mean=list(CITYSCAPES.mean), image_std=list(CITYSCAPES.std))


def test_16bit_grey_and_colour_pngs_keep_their_high_byte(tmp_path):
    grey = RNG.integers(0, 65536, (6, 7, 1), dtype=np.uint16)
    expected = np.repeat((grey >> 8).astype(np.uint8), 3, axis=2)
    from_grey = np.asarray(read_image(_png16(tmp_path / "grey.png", grey)))
    from_rgb = np.asarray(read_image(_png16(tmp_path / "rgb.png", np.repeat(grey, 3, axis=2))))
    np.testing.assert_array_equal(from_grey, expected)  # not saturated: Image.convert("RGB") clips I;16 at 255
    np.testing.assert_array_equal(from_rgb, expected)  # the same image in 16-bit colour decodes identically
    assert (from_grey == 255).mean() < 0.05


def test_alpha_is_dropped_in_training_and_in_the_processor(tmp_path, processor):
    rgba = RNG.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent: compositing over white would give 255 everywhere
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(tmp_path / "mask.png")
    expected = _normalised(rgba[..., :3])
    item = FilePairDataset(CITYSCAPES, [(tmp_path / "rgba.png", tmp_path / "mask.png")], label_lut({}))[0]
    train = (item["pixel_values"] - torch.tensor(CITYSCAPES.mean)[:, None, None]) / torch.tensor(
        CITYSCAPES.std)[:, None, None]
    torch.testing.assert_close(train, expected)
    for image in (Image.open(tmp_path / "rgba.png"), rgba, torch.from_numpy(rgba).permute(2, 0, 1)):
        torch.testing.assert_close(processor(image, return_tensors="pt").pixel_values[0], expected)


def test_16bit_images_decode_alike_as_files_pil_and_arrays(tmp_path, processor):
    grey = RNG.integers(0, 65536, (5, 6, 1), dtype=np.uint16)
    expected = _normalised(np.repeat((grey >> 8).astype(np.uint8), 3, axis=2))
    pil = Image.open(_png16(tmp_path / "grey.png", grey))
    assert pil.mode == "I;16"
    for image in (pil, grey, np.repeat(grey, 3, axis=2)):
        torch.testing.assert_close(processor(image, return_tensors="pt").pixel_values[0], expected)
    rgb8 = torch.from_numpy(np.repeat((grey >> 8).astype(np.uint8), 3, axis=2)).permute(2, 0, 1) / 255
    torch.testing.assert_close(image_to_tensor(pil), rgb8)  # a loader item without a transform


def test_float_images_in_unit_range_warn_like_transformers(processor):
    rgb8 = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    unit = rgb8.astype(np.float32) / 255
    with pytest.warns(UserWarning, match="already rescaled images.*do_rescale=False"):
        processor(unit, return_tensors="pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = processor(unit, do_rescale=False, return_tensors="pt").pixel_values[0]
        processor(rgb8, return_tensors="pt")  # uint8: no warning
    torch.testing.assert_close(out, _normalised(rgb8))


def test_undecodable_values_are_refused_with_the_source():
    with pytest.raises(ValueError, match="im.png: int32 image values 0..300 do not fit 8 bits"):
        decode_array(np.array([[0, 300]], dtype=np.int32), -1, source="im.png")
    with pytest.raises(TypeError, match="bool arrays are not images"):
        decode_array(np.zeros((2, 2), bool), -1)
    with pytest.raises(ValueError, match="x.tif: 32-bit float images \\(mode F\\)"):
        decode_image(Image.new("F", (2, 2)), "x.tif")
    with pytest.raises(OSError, match="cannot read image .*missing.png"):
        read_image("missing.png")


def test_label_maps_processed_without_rgb_conversion_keep_their_values(processor):
    mask = Image.fromarray(np.array([[0, 3], [255, 7]], np.uint8))
    assert processor.process_image(mask, do_convert_rgb=False).flatten().tolist() == [0, 3, 255, 7]
