"""High-level APIs: ImageNet classification with the published checkpoints."""

from edgenext_dense.apis.classification import (
    EdgeNeXtClassifier,
    imagenet_classes,
    inference_classifier,
    init_classifier,
)

__all__ = ["EdgeNeXtClassifier", "imagenet_classes", "inference_classifier", "init_classifier"]
