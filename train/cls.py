"""Image classification training: `accelerate launch train/cls.py --config train/configs/<recipe>.yaml`."""
from sr_models.training.cli import main

if __name__ == "__main__":
    main("image-classification")
