"""What each data set's models need to know: classes, label names, colours, normalisation, crop and test sizes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..constants import IGNORE_INDEX


def _bit_palette(n: int) -> Tuple[Tuple[int, int, int], ...]:
    """The PASCAL VOC colour map: distinct colours from the bits of the class index."""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i + 1
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


@dataclass(frozen=True)
class DatasetInfo:
    """Label space and preprocessing of one segmentation data set (`ignore_index` marks unlabelled pixels);
    `crop_size` is the paper's training crop, `test_size` the whole-image size at inference (default: the crop)."""
    name: str
    label_names: Tuple[str, ...]
    crop_size: Tuple[int, int]
    test_size: Tuple[int, int] = ()
    palette: Tuple[Tuple[int, int, int], ...] = ()
    mean: Tuple[float, float, float] = IMAGENET_DEFAULT_MEAN
    std: Tuple[float, float, float] = IMAGENET_DEFAULT_STD
    ignore_index: int = IGNORE_INDEX
    large_object_classes: Tuple[str, ...] = field(default=())
    class_weights: Tuple[float, ...] = ()  # published per-class loss weights (`loss.class_weight: dataset`)

    def __post_init__(self):
        if not self.palette:
            object.__setattr__(self, "palette", _bit_palette(len(self.label_names)))
        if not self.test_size:
            object.__setattr__(self, "test_size", self.crop_size)
        if self.class_weights and len(self.class_weights) != len(self.label_names):
            raise ValueError(f"{self.name}: {len(self.class_weights)} class weights for "
                             f"{len(self.label_names)} classes")
        if len(self.palette) != len(self.label_names):
            raise ValueError(f"{self.name}: {len(self.palette)} colours for {len(self.label_names)} classes")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> Dict[int, str]:
        return dict(enumerate(self.label_names))


def _cityscapes() -> Tuple[DatasetInfo, Dict[int, int]]:
    """Cityscapes from the official label table (`cityscapesscripts.helpers.labels`): the 19 evaluated classes in
    train-id order with their names and colours, and labelId -> trainId for those classes."""
    try:
        from cityscapesscripts.helpers.labels import labels
    except ImportError as e:  # a dependency of sr-models; only a broken install lands here
        raise ImportError(f"the Cityscapes label table needs cityscapesscripts (pip install cityscapesscripts): "
                          f"{e}") from e
    evaluated = sorted((label for label in labels if not label.ignoreInEval), key=lambda label: label.trainId)
    info = DatasetInfo(
        name="cityscapes",
        label_names=tuple(label.name for label in evaluated),
        palette=tuple(tuple(label.color) for label in evaluated),
        crop_size=(769, 769),
        test_size=(1024, 2048),
        large_object_classes=("truck", "bus", "train"),
        # the weights of the authors' OHEM cross-entropy (lxtGH/SFSegNets loss.py, OhemCrossEntropy2dTensor with
        # use_weight=True, off by default there); the same numbers appear in the OCNet and HRNet code bases
        class_weights=(0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023, 0.9539, 0.9843,
                       1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507),
    )
    return info, {label.id: label.trainId for label in evaluated}


CITYSCAPES, CITYSCAPES_TRAIN_IDS = _cityscapes()
# train id -> the official labelId that the evaluation server and `evalPixelLevelSemanticLabeling` expect
CITYSCAPES_LABEL_IDS: Tuple[int, ...] = tuple(sorted(CITYSCAPES_TRAIN_IDS, key=CITYSCAPES_TRAIN_IDS.get))


CAMVID = DatasetInfo(
    name="camvid",
    label_names=(
        "sky", "building", "pole", "road", "sidewalk", "tree", "sign symbol", "fence", "car", "pedestrian",
        "bicyclist",
    ),
    palette=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
    crop_size=(640, 640),
    test_size=(720, 960),
)

PASCAL_CONTEXT = DatasetInfo(
    name="pascal_context",
    label_names=(
        "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle", "building",
        "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow", "cup", "curtain", "dog",
        "door", "fence", "floor", "flower", "food", "grass", "ground", "horse", "keyboard", "light", "motorbike",
        "mountain", "mouse", "person", "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves",
        "sidewalk", "sign", "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall",
        "water", "window", "wood",
    ),
    crop_size=(480, 480),
)

ADE20K = DatasetInfo(
    name="ade20k",
    label_names=(
        "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
        "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
        "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
        "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
        "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
        "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
        "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
        "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
        "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
        "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
        "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
        "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
        "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
        "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
        "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
        "glass", "clock", "flag",
    ),
    crop_size=(512, 512),
)

DATASETS: Dict[str, DatasetInfo] = {d.name: d for d in (CITYSCAPES, ADE20K, PASCAL_CONTEXT, CAMVID)}


def get_dataset_info(name: str) -> DatasetInfo:
    """The `DatasetInfo` registered under `name`, with a clear error for an unknown one."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None
