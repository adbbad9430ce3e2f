"""Training recipes: typed sections that refuse unknown keys and bad values before anything trains.

A recipe is a YAML file (`train/configs/*.yaml`, shipped as `sr_models/configs/`, addressable by name) read into a
`Recipe`, with `--set a.b=value` overrides (value parsed as YAML) applied on top. Every key is a field of one of the
dataclasses below, so adding a recipe key is one line (name, type, default) in the section it belongs to; its type
is checked when a recipe is read: `PositiveInt`, `Literal[...]` (a choice), `Optional[...]` (may be null), `Size`, a
nested section, ...
`model.args` stays a free mapping (the model's keyword arguments); it is checked by building the model on the
meta device.
"""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union, get_args
from typing import get_origin, get_type_hints

import timm
import timm.optim
import torch
import yaml
from torch import nn

from ..constants import AUX_WEIGHT, EVAL_SCALES, OHEM_MIN_KEPT
from ..recipes import recipe_path

__all__ = [
    "Recipe", "ModelConfig", "DataConfig", "EmbeddedConfig", "TransformConfig", "PhotometricConfig", "OptimConfig",
    "ScheduleConfig", "LossConfig", "EvalConfig", "EmaConfig", "MixupConfig", "RecipeError", "TASKS", "load_config",
    "recipe_from_dict",
]

# task name -> "module:function" building its `Task` (imported only when that task trains)
TASKS: Dict[str, str] = {
    "semantic-segmentation": "sr_models.training.segmentation:build_segmentation_task",
    "image-classification": "sr_models.training.classification:build_classification_task",
    "instance-segmentation": "sr_models.training.detection:build_detection_task",
    "panoptic-segmentation": "sr_models.training.panoptic:build_panoptic_task",
}
# model keyword arguments that the tasks derive themselves (from the data set, or from another recipe key)
_DERIVED_MODEL_ARGS = {
    "num_classes": "the data set's number of classes",
    "num_stuff_classes": "the panoptic data set's number of stuff classes",
    "pretrained": "the recipe trains from model.pretrained_backbone, not a pretrained head",
    "pretrained_backbone": "set model.pretrained_backbone instead",
    "pretrained_cfg_overlay": "the data set's labels and normalisation",
}


class RecipeError(ValueError):
    """A recipe or an override that cannot be trained; the message names the key and where it came from."""


@dataclass(frozen=True)
class _Check:
    """A constraint on a value, for `Annotated[type, _Check(...)]`."""
    test: Callable[[Any], bool]
    words: str


PositiveInt = Annotated[int, _Check(lambda v: v > 0, "> 0")]
NonNegativeInt = Annotated[int, _Check(lambda v: v >= 0, ">= 0")]
PositiveFloat = Annotated[float, _Check(lambda v: v > 0, "> 0")]
NonNegativeFloat = Annotated[float, _Check(lambda v: v >= 0, ">= 0")]
Fraction = Annotated[float, _Check(lambda v: 0 <= v < 1, "in [0, 1)")]
Probability = Annotated[float, _Check(lambda v: 0 < v <= 1, "in (0, 1]")]
Size = Tuple[PositiveInt, PositiveInt]  # (height, width)
Triple = Tuple[float, float, float]  # per-channel mean / std


# ---------------------------------------------------------------------------------------------------------- sections
@dataclass
class ModelConfig:
    name: str  # a timm model name (sr-models registers srnet_*, fcn_*, sr_resnet*)
    args: Dict[str, Any] = field(default_factory=dict)  # keyword arguments of the model, checked on the meta device
    pretrained_backbone: bool = False  # segmentation, detection: start the backbone from timm's ImageNet weights
    # an SR-ResNet (or an SRNet on one) starts as this timm ResNet: file, folder, Hub id or timm tag (docs/training.md)
    init_from: Optional[str] = None


@dataclass
class EmbeddedConfig:
    num_images: Optional[PositiveInt] = None  # default: 480 train, 192 val
    image_size: PositiveInt = 64
    seed: int = 0


@dataclass
class TransformConfig:
    """Classification: timm's `create_transform` settings (unset: from the model's pretrained cfg)."""
    input_size: Optional[Tuple[PositiveInt, PositiveInt, PositiveInt]] = None
    interpolation: Optional[Literal["bilinear", "bicubic", "nearest", "random"]] = None
    crop_pct: Optional[Probability] = None
    crop_mode: Optional[Literal["center", "squash", "border"]] = None
    mean: Optional[Triple] = None
    std: Optional[Triple] = None
    scale: Optional[Tuple[PositiveFloat, PositiveFloat]] = None  # random-resized-crop area range (timm: 0.08-1)
    hflip: Optional[Annotated[float, _Check(lambda v: 0 <= v <= 1, "in [0, 1]")]] = None
    color_jitter: Optional[NonNegativeFloat] = None  # timm's default 0.4
    auto_augment: Optional[str] = None  # e.g. rand-m9-mstd0.5-inc1 (RandAugment), augmix-m5-w3, trivialaugment
    re_prob: Optional[Fraction] = None  # random erasing probability
    re_mode: Optional[Literal["const", "rand", "pixel"]] = None
    re_count: Optional[PositiveInt] = None


@dataclass
class PhotometricConfig:
    """mmsegmentation's PhotoMetricDistortion (`sr_models.data.transforms.PhotometricDistortion`)."""
    brightness_delta: NonNegativeFloat = 32
    contrast_range: Tuple[PositiveFloat, PositiveFloat] = (0.5, 1.5)
    saturation_range: Tuple[NonNegativeFloat, NonNegativeFloat] = (0.5, 1.5)
    hue_delta: NonNegativeFloat = 18


@dataclass
class DataConfig:
    """Unset (null) keys take the data set's own value (`sr_models.data.metadata`) or the loader's default."""
    name: str  # cityscapes, ade20k, pascal_context, camvid, embedded, hf, imagefolder
    root: Optional[str] = None
    train_split: str = "train"
    val_split: str = "val"
    crop_size: Optional[Size] = None
    scale_range: Optional[Tuple[PositiveFloat, PositiveFloat]] = None
    flip: Optional[bool] = None
    photometric: Union[bool, PhotometricConfig] = False  # true: mmseg's defaults
    cat_max_ratio: Probability = 1.0  # redraw crops where one class covers this share (mmseg: 0.75); 1: off
    mean: Optional[Triple] = None
    std: Optional[Triple] = None
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    hf_path: Optional[str] = None
    hf_config: Optional[str] = None
    label_set: Optional[str] = None
    label_names: Optional[List[str]] = None
    label_map: Optional[Dict[int, int]] = None
    image_column: Optional[str] = None
    label_column: Optional[str] = None

    def as_mapping(self) -> Dict[str, Any]:
        """The keys that are set, as the mapping `sr_models.data.build_dataset` reads."""
        return _without_nulls(dataclasses.asdict(self))


@dataclass
class OptimConfig:
    name: str = "sgd"  # any of timm.optim.list_optimizers(); sgd = classical momentum unless nesterov
    lr: PositiveFloat = 0.01
    momentum: NonNegativeFloat = 0.9
    weight_decay: NonNegativeFloat = 5e-4
    nesterov: bool = False  # sgd only
    filter_bias_and_bn: bool = False  # no weight decay on norms and biases (timm's default; PSPNet decays all)
    layer_decay: Optional[Probability] = None  # layer-wise lr decay, lr x layer_decay^(depth from the head)
    clip_grad: Optional[PositiveFloat] = None  # clip the gradients' global L2 norm to this value


@dataclass
class ScheduleConfig:
    name: Literal["poly", "cosine", "step"] = "poly"
    power: PositiveFloat = 0.9
    warmup_steps: NonNegativeInt = 0
    warmup_ratio: Fraction = 0.0  # step: the warm-up starts at this fraction of lr (mmdetection: 0.001)
    milestones: List[PositiveInt] = field(default_factory=list)  # step: updates at which lr is multiplied by gamma
    gamma: PositiveFloat = 0.1


@dataclass
class LossConfig:
    name: Literal["ce", "dice", "focal", "lovasz"] = "ce"  # segmentation
    class_weight: Union[None, Literal["dataset", "computed"], List[PositiveFloat]] = None  # segmentation
    aux_weight: NonNegativeFloat = AUX_WEIGHT
    ohem_thresh: Optional[Probability] = None  # 0.7 in the test-set recipe
    ohem_min_kept: PositiveInt = OHEM_MIN_KEPT
    label_smoothing: Fraction = 0.0


@dataclass
class EvalConfig:
    mode: Literal["whole", "slide", "multiscale"] = "whole"
    max_images: Optional[PositiveInt] = None  # evaluate the first N validation images only
    crop_size: Optional[Size] = None  # sliding-window tile (default: data.crop_size, else the data set's crop)
    scales: List[PositiveFloat] = field(default_factory=lambda: list(EVAL_SCALES))
    flip: bool = True


@dataclass
class EmaConfig:
    decay: Optional[Fraction] = None  # EMA of the weights (timm's ModelEmaV3), e.g. 0.9998; null: off
    warmup: bool = False  # decay ramped up as 1 - (1 + step)^(-2/3)


@dataclass
class MixupConfig:
    """timm's Mixup / CutMix (classification); off while both alphas are 0 and cutmix_minmax is null."""
    mixup_alpha: NonNegativeFloat = 0.0
    cutmix_alpha: NonNegativeFloat = 0.0
    cutmix_minmax: Optional[Tuple[Probability, Probability]] = None
    prob: Probability = 1.0
    switch_prob: Annotated[float, _Check(lambda v: 0 <= v <= 1, "in [0, 1]")] = 0.5
    mode: Literal["batch", "pair", "elem"] = "batch"


@dataclass
class Recipe:
    task: Literal[tuple(TASKS)]
    model: ModelConfig
    data: DataConfig
    seed: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: PositiveInt = 8  # per process
    grad_accum_steps: PositiveInt = 1
    max_steps: PositiveInt = 1000  # optimizer updates
    checkpoint_every: PositiveInt = 500
    keep_checkpoints: PositiveInt = 2
    log_every: PositiveInt = 10
    num_workers: NonNegativeInt = 0
    eval: EvalConfig = field(default_factory=EvalConfig)
    eval_every: Optional[PositiveInt] = None  # also evaluate every N updates (the curves' points); null: at the end
    overlays: NonNegativeInt = 4  # segmentation: image | prediction | ground truth PNGs written at the end
    ema: EmaConfig = field(default_factory=EmaConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    channels_last: bool = False  # speed: weights and inputs in NHWC memory format
    compile: bool = False  # speed: torch.compile (inductor) through Accelerate
    mixed_precision: Optional[Literal["no", "bf16", "fp16"]] = None  # null: the launcher's --mixed_precision

    def to_dict(self) -> Dict[str, Any]:
        """Plain YAML/JSON-ready values (what the run folder's `config.yaml` records)."""
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------------- reading a recipe
def _without_nulls(mapping: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _without_nulls(v) if isinstance(v, dict) else v for k, v in mapping.items() if v is not None}


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return f"{_describe(args[0])} {' and '.join(check.words for check in args[1:])}"
    if origin is Union:
        return " or ".join(_describe(a) if a is not type(None) else "null" for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        count = "" if origin is list or Ellipsis in args else f"{len(args)} "
        return f"a list of {count}items, each {_describe(args[0])}"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    """`value` checked against the type `hint` (lists for tuples, floats for ints where a number is expected)."""
    origin, args = get_origin(hint), get_args(hint)
    bad = RecipeError(f"{key}={value!r} must be {_describe(hint)} ({where})")
    if hint is Any:
        return value
    if origin is Annotated:
        try:
            value = _coerce(value, args[0], key, where)
        except RecipeError:
            raise bad from None
        if not all(check.test(value) for check in args[1:]):
            raise bad
        return value
    if origin is Union:
        if value is None and type(None) in args:
            return None
        for member in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, member, key, where)
            except RecipeError:
                continue
        raise bad
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise bad
    if dataclasses.is_dataclass(hint):
        if isinstance(value, dict):
            return _build(hint, value, key, where)
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)) or (origin is tuple and Ellipsis not in args
                                                    and len(value) != len(args)):
            raise bad
        hints = args if origin is tuple and Ellipsis not in args else [args[0]] * len(value)
        return [_coerce(v, h, f"{key}[{i}]", where) for i, (v, h) in enumerate(zip(value, hints))]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        key_hint, value_hint = args
        return {_coerce(k, key_hint, f"{key} key", where): _coerce(v, value_hint, f"{key}.{k}", where)
                for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if type(value) is hint:  # bool is not an int here, nor an int a bool
        return value
    raise bad


def _build(cls: type, mapping: Dict[str, Any], section: str, where: str) -> Any:
    """An instance of the dataclass `cls` from `mapping`: unknown keys refused with the valid ones listed."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{section}." if section else ""
    for key in mapping:
        if key not in names:
            scope = f" in {section}" if section else ""
            raise RecipeError(f"unknown key '{prefix}{key}' in {where}; valid keys{scope}: {', '.join(names)}")
    for name, spec in names.items():
        if name not in mapping and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise RecipeError(f"missing key '{prefix}{name}' in {where}")
    hints = get_type_hints(cls, include_extras=True)
    return cls(**{key: _coerce(value, hints[key], prefix + key, where) for key, value in mapping.items()})


def recipe_from_dict(raw: Dict[str, Any], where: str = "the recipe") -> Recipe:
    """A `Recipe` from a plain mapping (a parsed YAML file), every key and value checked; `where` names the source."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{where} must hold a mapping of recipe keys, not {type(raw).__name__}")
    recipe = _build(Recipe, raw, "", where)
    _check_recipe(recipe, where)
    return recipe


def _apply_override(raw: Dict[str, Any], item: str) -> None:
    """Set `a.b.c=value` (value parsed as YAML) in the nested mapping `raw`."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {item}: expected key.sub=value, e.g. --set optim.lr=0.02")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RecipeError(f"--set {item}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    node = raw
    *parents, leaf = key.split(".")
    for depth, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"--set {item}: {'.'.join(parents[:depth + 1])} is a value, not a section")
    node[leaf] = value


def load_config(path: Union[str, Path], overrides: Sequence[str] = ()) -> Recipe:
    """The recipe at `path` (a file, or a packaged recipe's name) with `overrides` (`key.sub=value`) applied, checked
    completely (model arguments too)."""
    path = recipe_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise FileNotFoundError(f"cannot read recipe {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path} is not valid YAML{line} ({getattr(e, 'problem', None) or e})") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise RecipeError(f"{path} must hold a mapping of recipe keys, not {type(raw).__name__}")
    recipe = _build(Recipe, raw, "", str(path))
    for item in overrides:  # one at a time, so that an error names the override that caused it
        _apply_override(raw, item)
        recipe = _build(Recipe, raw, "", f"--set {item}")
    _check_recipe(recipe, " ".join([str(path), *(f"--set {item}" for item in overrides)]))
    return recipe


# ------------------------------------------------------------------------------------------- checks across sections
def _check_recipe(recipe: Recipe, where: str) -> None:
    """What the types cannot say: the model exists and accepts `model.args`, the optimizer exists, the data root
    exists, ... The same checks for every task; the model registry and data sets differ for detection."""
    model = recipe.model
    if recipe.task in ("instance-segmentation", "panoptic-segmentation"):
        create = _check_detector(recipe, where)
    else:
        if not timm.is_model(model.name):
            raise RecipeError(f"model.name={model.name!r} is not a registered timm model (sr-models registers e.g. "
                              f"srnet_resnet50_d8, sr_resnet50; `timm.list_models('sr*')` lists them) ({where})")
        if model.pretrained_backbone and recipe.task != "semantic-segmentation":
            raise RecipeError(f"model.pretrained_backbone applies to segmentation and detection recipes only "
                              f"({where})")
        if recipe.data.root and not Path(recipe.data.root).exists():
            raise FileNotFoundError(f"data.root={recipe.data.root} does not exist; download the data set there or "
                                    f"set data.root ({where})")
        create = timm.create_model
    for key, reason in _DERIVED_MODEL_ARGS.items():
        if key in model.args:
            raise RecipeError(f"model.args.{key} is set by the task ({reason}); remove it ({where})")
    if recipe.optim.name not in timm.optim.list_optimizers():
        raise RecipeError(f"optim.name={recipe.optim.name!r} is not a timm optimizer (`timm.optim.list_optimizers()` "
                          f"lists them, e.g. sgd, adamw, lamb) ({where})")
    try:  # the model's own argument checks, without allocating its weights
        with torch.device("meta"):
            create(model.name, **model.args)
    except Exception as e:  # noqa: BLE001 - any refusal of the arguments is the recipe's error
        raise RecipeError(f"model.args={model.args} are refused by {model.name}: {e} ({where})") from None


def _check_detector(recipe: Recipe, where: str) -> Callable[..., nn.Module]:
    """A detection recipe names a registered detector and a data set detection reads; returns its factory."""
    from ..models.detection import create_detector, is_detector, list_detectors

    if not is_detector(recipe.model.name):
        raise RecipeError(f"model.name={recipe.model.name!r} is not a registered detector (sr_models.list_detectors(): "
                          f"{', '.join(list_detectors()[:3])}, ...) ({where})")
    if recipe.data.name not in ("coco", "embedded"):
        raise RecipeError(f"data.name={recipe.data.name!r}: detection reads 'coco' (COCO layout under data.root) "
                          f"or 'embedded' (the generated instance set) ({where})")
    if recipe.data.root and not Path(recipe.data.root).exists() and recipe.data.name == "coco":
        raise FileNotFoundError(f"data.root={recipe.data.root} does not exist ({where})")
    return create_detector
