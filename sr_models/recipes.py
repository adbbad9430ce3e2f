"""The training recipes shipped with the package (`sr_models/configs/*.yaml`), addressable by name.

`--config demo_embedded` and `--config train/configs/demo_embedded.yaml` name the same recipe: a path that exists
is used as given, anything else is looked up among the packaged recipes.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Union

__all__ = ["RECIPES", "list_recipes", "recipe_path"]

RECIPES = Path(__file__).resolve().parent / "configs"


def list_recipes() -> List[str]:
    """The names of the packaged recipes."""
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def recipe_path(recipe: Union[str, Path]) -> Path:
    """The file of `recipe`: an existing path, or the name of a packaged recipe (with or without `.yaml`)."""
    path = Path(recipe)
    if path.is_file():
        return path
    packaged = RECIPES / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    raise FileNotFoundError(f"config {recipe} is neither a file nor a packaged recipe "
                            f"(packaged: {', '.join(list_recipes())})")
