"""Semantic segmentation training: `accelerate launch train/seg.py --config train/configs/<recipe>.yaml`."""
from sr_models.training.cli import main

if __name__ == "__main__":
    main("semantic-segmentation")
