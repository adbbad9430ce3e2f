"""Object detection and instance segmentation: `accelerate launch train/det.py --config train/configs/<recipe>.yaml`."""
from sr_models.training.cli import main

if __name__ == "__main__":
    main("instance-segmentation")
