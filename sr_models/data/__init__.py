"""Data sets, their metadata, and transforms."""
from .metadata import DATASETS, DatasetInfo, get_dataset_info
