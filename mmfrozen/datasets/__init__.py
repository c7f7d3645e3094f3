"""Datasets registered in MMDetection's DATASETS registry: COCO and LVIS with checked files."""
from .annotation_check import AnnotationFileError  # noqa: F401
from .checked_datasets import (CheckedCocoDataset, CheckedLVISV05Dataset,  # noqa: F401
                               CheckedLVISV1Dataset)
from .image_check import ImageFileError  # noqa: F401
