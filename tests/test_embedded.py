"""The embedded data set: deterministic, and its large objects ambiguous locally but fixed by a count over the image."""
import numpy as np
import pytest

from sr_models.data import EMBEDDED, EmbeddedSegmentation
from sr_models.data.embedded import SIGN_COLOURS, SIGN_COUNTS, SIGN_SIZE, VEHICLES


def test_scenes_are_deterministic_and_splits_differ():
    a, b = EmbeddedSegmentation("train", seed=3), EmbeddedSegmentation("train", seed=3)
    image_a, mask_a = a.load(7)
    image_b, mask_b = b.load(7)
    assert np.array_equal(np.asarray(image_a), np.asarray(image_b)) and np.array_equal(mask_a, mask_b)
    assert not np.array_equal(np.asarray(EmbeddedSegmentation("val", seed=3).load(7)[0]), np.asarray(image_a))
    assert not np.array_equal(np.asarray(EmbeddedSegmentation("train", seed=4).load(7)[0]), np.asarray(image_a))


@pytest.mark.parametrize("size", [64, 32])
def test_every_scene_has_one_large_vehicle_and_the_number_of_signs_of_its_class(size):
    dataset = EmbeddedSegmentation("train", num_images=40, image_size=size)
    seen = set()
    for i in range(len(dataset)):
        _, mask = dataset.load(i)
        vehicles = [v for v in VEHICLES if (mask == v).any()]
        assert len(vehicles) == 1
        vehicle = vehicles[0]
        seen.add(vehicle)
        assert (mask == vehicle).mean() > 0.15  # a large object
        assert (mask == 2).sum() == SIGN_COUNTS[vehicle] * SIGN_SIZE ** 2  # whole signs, as many as the class says
    assert seen == set(VEHICLES) and len(set(SIGN_COUNTS.values())) == len(VEHICLES)


def test_sign_colours_do_not_depend_on_the_class():
    """Only the count of signs is a cue: each class's signs take the three colours in the same proportions."""
    dataset = EmbeddedSegmentation("train", num_images=300)
    colours = {v: [] for v in VEHICLES}
    for i in range(len(dataset)):
        image, mask = dataset.load(i)
        vehicle = next(v for v in VEHICLES if (mask == v).any())
        pixels = np.asarray(image).astype(int)[mask == 2]
        nearest = np.abs(pixels[:, None] - np.array(SIGN_COLOURS)[None]).sum(-1).argmin(1)
        colours[vehicle] += list(nearest)
    shares = np.array([np.bincount(colours[v], minlength=3) / len(colours[v]) for v in VEHICLES])
    assert np.abs(shares - 1 / 3).max() < 0.07


def test_vehicle_texture_does_not_depend_on_the_class():
    """Local appearance is ambiguous: the stripes' statistics are the same for trucks, buses and trains."""
    dataset = EmbeddedSegmentation("train", num_images=150)
    means = {v: [] for v in VEHICLES}
    for i in range(len(dataset)):
        image, mask = dataset.load(i)
        vehicle = next(v for v in VEHICLES if (mask == v).any())
        means[vehicle].append(np.asarray(image)[mask == vehicle].mean(0))
    per_class = np.array([np.mean(means[v], axis=0) for v in VEHICLES])
    assert np.abs(per_class - per_class.mean(0)).max() < 8  # grey levels 0-255: no class-specific colour


def test_info_and_errors():
    assert EMBEDDED.large_object_classes == ("truck", "bus", "train") and EMBEDDED.num_classes == 6
    with pytest.raises(ValueError, match="split='dev'"):
        EmbeddedSegmentation("dev")
    with pytest.raises(IndexError):
        EmbeddedSegmentation("val", num_images=2).load(2)
