"""The embedded data set: deterministic, and its large objects ambiguous locally but fixed by context."""
import numpy as np
import pytest

from sr_models.data import EMBEDDED, EmbeddedSegmentation
from sr_models.data.embedded import SIGN_COLOURS, VEHICLES


def test_scenes_are_deterministic_and_splits_differ():
    a, b = EmbeddedSegmentation("train", seed=3), EmbeddedSegmentation("train", seed=3)
    image_a, mask_a = a.load(7)
    image_b, mask_b = b.load(7)
    assert np.array_equal(np.asarray(image_a), np.asarray(image_b)) and np.array_equal(mask_a, mask_b)
    assert not np.array_equal(np.asarray(EmbeddedSegmentation("val", seed=3).load(7)[0]), np.asarray(image_a))
    assert not np.array_equal(np.asarray(EmbeddedSegmentation("train", seed=4).load(7)[0]), np.asarray(image_a))


def test_every_scene_has_one_large_vehicle_and_a_majority_of_its_signs():
    dataset = EmbeddedSegmentation("train", num_images=40)
    seen = set()
    for i in range(len(dataset)):
        image, mask = dataset.load(i)
        pixels = np.asarray(image).astype(int)
        vehicles = [v for v in VEHICLES if (mask == v).any()]
        assert len(vehicles) == 1
        vehicle = vehicles[0]
        seen.add(vehicle)
        assert (mask == vehicle).mean() > 0.15  # a large object
        sign_pixels = pixels[mask == 2]
        nearest = [min(SIGN_COLOURS, key=lambda v: np.abs(p - SIGN_COLOURS[v]).sum()) for p in sign_pixels]
        assert max(set(nearest), key=nearest.count) == vehicle  # the majority of signs names the vehicle
    assert seen == set(VEHICLES)


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
