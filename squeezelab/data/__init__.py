"""Datasets as uint8 tensors: named datasets, directories, splits and batched augmentation.

``load_dataset("fashion-mnist")`` finds the IDX files of Debian's dataset-fashion-mnist;
a directory is read as IDX, CIFAR python batches or an ImageFolder tree. Detection data
(``load_detection``): the generated ``fashion-mnist-det`` or a COCO folder. Nothing downloads.
"""

from squeezelab.data.augment import AUGMENTATIONS, augment, normalize, random_crop, random_flip
from squeezelab.data.dataset import Dataset, split_train_val, subset
from squeezelab.data.detection import (
    DetectionSplit,
    is_detection,
    kmeans_anchors,
    load_detection,
    write_coco,
)
from squeezelab.data.names import (
    DATASETS,
    DatasetInfo,
    dataset_info,
    list_datasets,
    load_dataset,
)

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "DetectionSplit",
    "augment",
    "dataset_info",
    "is_detection",
    "kmeans_anchors",
    "list_datasets",
    "load_dataset",
    "load_detection",
    "normalize",
    "random_crop",
    "random_flip",
    "split_train_val",
    "subset",
    "write_coco",
]
