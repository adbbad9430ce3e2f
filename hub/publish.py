"""Publish a training run (or any `sr_models.save_pretrained` folder) to the Hugging Face Hub.

    python hub/publish.py outputs/demo/sr_ghp_gcn --repo-id my-org/srnet_resnet18_d8.embedded [--revision R]
        [--private] [--dry-run]

Stages model.safetensors, config.json, preprocessor_config.json and a model card, loads them back through timm and
transformers, uploads them, and verifies the upload by downloading it. Exits 1 with a one-line error on failure.
"""
import argparse
import sys
from pathlib import Path

from sr_models.cli_errors import add_debug_flag, reported_errors
from sr_models.publishing import publish


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a training run's output folder or a saved model folder")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--revision", help="branch to commit to (created from main if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--dry-run", action="store_true", help="stage and verify locally, upload nothing")
    add_debug_flag(parser)
    args = parser.parse_args()
    with reported_errors(args.debug):
        publish(args.source, args.repo_id, args.revision, args.private, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
