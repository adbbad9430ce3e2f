"""Data sets, their metadata, and transforms."""
from .builder import build_dataset
from .classification import HFClassificationDataset, ImageFolderClassification, classification_transform
from .embedded import EMBEDDED, EmbeddedSegmentation
from .images import decode_array, decode_image, open_image, read_image
from .metadata import DATASETS, IGNORE_INDEX, DatasetInfo, get_dataset_info
from .segmentation import FilePairDataset, HFSegmentationDataset, SegmentationDataset
from .transforms import SegmentationTransform, image_to_tensor
