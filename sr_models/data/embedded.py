"""The embedded data set: a generated scene-parsing task whose large objects need image-level context.

Each image holds one large vehicle (truck, bus or train) drawn with the SAME striped texture whatever its class,
small "signs" in the background, and a few cars with their own unambiguous texture. Inside a vehicle, local
appearance says "vehicle" but not which one; the class is fixed by HOW MANY signs the image holds (truck: 2, bus: 4,
train: 6), and the signs look alike whatever the class (each takes one of three colours at random). Every scene has
signs, so their presence says nothing; a pixel whose receptive field sees part of the image sees some of the signs
and cannot tell 2 from 4; a head that pools the whole image (SR) can count them all. This is the situation of
trucks vs buses vs trains in Cityscapes (Table I). Deterministic: image i of a split depends only on (seed, split, i).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from PIL import Image

from .metadata import DatasetInfo
from .segmentation import SegmentationDataset, Transform

__all__ = ["EMBEDDED", "EmbeddedSegmentation", "SIGN_COLOURS", "SIGN_COUNTS", "SIGN_SIZE"]

EMBEDDED = DatasetInfo(
    name="embedded",
    label_names=("background", "car", "sign", "truck", "bus", "train"),
    palette=((40, 40, 40), (250, 200, 0), (255, 255, 255), (0, 0, 200), (0, 160, 160), (160, 0, 160)),
    crop_size=(64, 64),
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    large_object_classes=("truck", "bus", "train"),
)
VEHICLES = (3, 4, 5)  # truck, bus, train
SIGN_COUNTS = {3: 2, 4: 4, 5: 6}  # the number of signs in a scene names its vehicle
SIGN_COLOURS = ((220, 40, 40), (40, 200, 40), (40, 60, 220))  # drawn at random: colour says nothing of the class
SIGN_SIZE = 5
_SPLITS = {"train": 0, "val": 1, "test": 2}


class EmbeddedSegmentation(SegmentationDataset):
    """`num_images` generated scenes of `image_size` x `image_size` pixels (see the module docstring)."""

    def __init__(
            self,
            split: str = "train",
            num_images: Optional[int] = None,
            image_size: int = 64,
            seed: int = 0,
            transform: Optional[Transform] = None,
    ):
        super().__init__(EMBEDDED, transform)
        if split not in _SPLITS:
            raise ValueError(f"split={split!r} is not one of {sorted(_SPLITS)}")
        if image_size < 32:
            raise ValueError(f"image_size={image_size} is too small for the scenes; use at least 32")
        self.split, self.seed, self.image_size = split, seed, image_size
        self.num_images = num_images if num_images is not None else (480 if split == "train" else 192)

    def __len__(self) -> int:
        return self.num_images

    def load(self, index: int) -> Tuple[Image.Image, np.ndarray]:
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        return self.generate(np.random.default_rng([self.seed, _SPLITS[self.split], index]), self.image_size)

    @staticmethod
    def generate(rng: np.random.Generator, size: int) -> Tuple[Image.Image, np.ndarray]:
        """One scene: (RGB image, uint8 mask of train ids); drawn again if its signs found no room (small images)."""
        for _ in range(100):
            scene = _compose(rng, size)
            if scene is not None:
                return scene
        raise RuntimeError(f"no room for the signs in a {size}x{size} scene after 100 draws")


def _compose(rng: np.random.Generator, size: int) -> Optional[Tuple[Image.Image, np.ndarray]]:
    """One draw of a scene (see the module docstring), or None if a sign found no room."""
    image = rng.normal(110, 18, (size, size, 3))  # textured grey background
    mask = np.zeros((size, size), np.uint8)
    vehicle = int(rng.choice(VEHICLES))
    # the vehicle: a large box, horizontal stripes whose colours do not depend on the class
    h, w = rng.integers(int(0.45 * size), int(0.7 * size), 2)
    top, left = rng.integers(0, size - h), rng.integers(0, size - w)
    base = rng.uniform(60, 200)
    rows = np.arange(h)[:, None] % 6 < 3
    stripes = np.where(rows, base, 255 - base)[..., None] + rng.normal(0, 12, (h, w, 3))
    image[top:top + h, left:left + w] = stripes
    mask[top:top + h, left:left + w] = vehicle
    free = mask == 0
    # signs: small squares in the background, as many as the vehicle's class says, each of a random colour
    for _ in range(SIGN_COUNTS[vehicle]):
        colour = np.array(SIGN_COLOURS[int(rng.integers(len(SIGN_COLOURS)))])
        texture = colour + rng.normal(0, 10, (SIGN_SIZE, SIGN_SIZE, 3))
        if not _paste(rng, image, mask, free, SIGN_SIZE, SIGN_SIZE, texture, 2):
            return None
    # cars: small boxes with a yellow checkerboard, recognisable locally; their number is not a cue
    for _ in range(int(rng.integers(1, 4))):
        checks = (np.add.outer(np.arange(6), np.arange(10)) % 2)[..., None]
        texture = np.where(checks, (250, 200, 0), (60, 50, 0)) + rng.normal(0, 10, (6, 10, 3))
        _paste(rng, image, mask, free, 6, 10, texture, 1)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)), mask


def _paste(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, free: np.ndarray, h: int, w: int,
           texture: np.ndarray, label: int, attempts: int = 200) -> bool:
    """Draw `texture` with `label` at a random place whose pixels and 1-pixel border are still background;
    False if none was found. The border keeps two signs from touching (they stay countable)."""
    size = mask.shape[0]
    for _ in range(attempts):
        top, left = rng.integers(0, size - h), rng.integers(0, size - w)
        if free[max(top - 1, 0):top + h + 1, max(left - 1, 0):left + w + 1].all():
            image[top:top + h, left:left + w] = texture
            mask[top:top + h, left:left + w] = label
            free[top:top + h, left:left + w] = False
            return True
    return False
