"""Publish a training run (or any `sr_models.save_pretrained` folder) to the Hugging Face Hub.

    python hub/publish.py outputs/demo/sr_ghp_gcn --repo-id my-org/srnet_resnet18_d8.embedded [--revision R]
        [--private] [--dry-run] [--timeout SECONDS]

The same command as `sr-models-publish` (see `sr_models.publishing`): stages model.safetensors, config.json,
preprocessor_config.json and a model card, loads them back through timm and transformers, uploads them, and verifies
the upload by downloading it. Exits 1 with a one-line error on failure.
"""
import sys

from sr_models.publishing import main

if __name__ == "__main__":
    sys.exit(main())
