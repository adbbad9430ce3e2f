"""Detection, instance and panoptic segmentation (Table IX): `accelerate launch train/det.py --config <recipe>`."""
from sr_models.training.cli import main

if __name__ == "__main__":
    main(("instance-segmentation", "panoptic-segmentation"))
