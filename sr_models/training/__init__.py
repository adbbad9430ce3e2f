"""Training with Accelerate: configs, the shared loop, the segmentation and classification recipes."""
from .config import apply_overrides, load_config, validate_config
from .engine import Task, build_optimizer, build_schedule, latest_checkpoint, train
