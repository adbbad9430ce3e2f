"""Training with Accelerate: typed recipes, the shared loop, the segmentation and classification tasks."""
from .config import Recipe, RecipeError, load_config, recipe_from_dict
from .engine import CheckpointError, Task, build_optimizer, build_schedule, latest_checkpoint, train
