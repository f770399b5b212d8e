"""Deterministic synthetic shape datasets for a no-download demo.

Two generators write small datasets of coloured geometric shapes in the on-disk layouts that
the OpenMMLab loaders read unchanged, so the detector and the segmenter can be trained and
evaluated on a CPU with nothing downloaded:

* :func:`make_coco_shapes` writes the COCO 2017 detection layout read by mmdet's
  ``CocoDataset`` and by pycocotools (``train2017/``, ``val2017/``,
  ``annotations/instances_{train,val}2017.json``).
* :func:`make_voc_shapes` writes the Pascal VOC 2012 segmentation layout read by mmseg's
  ``PascalVOCDataset`` with the settings of ``mmseg::_base_/datasets/pascal_voc12.py``
  (``VOC2012/JPEGImages``, ``VOC2012/SegmentationClass``, ``VOC2012/ImageSets/Segmentation``).

Each image is drawn from its own random stream, seeded by ``(seed, split, index)``, so a dataset
is the same byte for byte for the same arguments (JPEG quality is fixed; other Pillow/libjpeg
builds may encode the same pixels into other bytes), and a larger dataset begins with the images
of a smaller one. Only numpy, Pillow and json are used.

What the images hold, and the choices made:

* Shapes of up to five classes (:data:`SHAPE_CLASSES`) with random colours, so that a model has
  to learn the shape; the colour of each shape keeps a minimum distance from what lies under it,
  so that every annotated object is visible.
* Sizes are mostly medium to large (log-uniform between fractions of the shorter image side),
  objects lie wholly inside the image, and later shapes may partly hide earlier ones. An object
  keeps at least ``1 - max_occlusion`` of its pixels, and occlusion never cuts a hole in it.
* Boxes and areas describe the *visible* pixels, as in COCO: ``bbox`` is the tight box around
  the pixels an object shows in the image, ``area`` counts them. ``segmentation`` is the drawn
  polygon for an object nothing hides, and the traced outline of the visible pixels otherwise
  (one polygon per visible piece).
* Backgrounds are flat colours, linear gradients, smooth colour noise, or clutter lines over a
  flat colour or gradient; mild pixel noise covers the whole image.
* VOC masks are palettised PNGs with the standard VOC palette. Each shape class stands for one
  VOC class (:data:`VOC_ID_OF_SHAPE`), 0 is background, and a thin band of 255 (ignored by
  mmseg) runs along every object boundary, as in the real VOC masks.

A small manifest (:data:`MANIFEST_NAME`) written last records the parameters and the files, so
that asking again for the same dataset returns at once instead of regenerating it.

This module is the public face: the COCO writer is in :mod:`.coco_shapes`, the VOC writer in
:mod:`.voc_shapes`, what they share (checks, manifest, generation) in :mod:`.shapes_writer`,
the drawing in :mod:`.shapes_render` and the mask outlines in :mod:`.mask_polygons`.
"""

from __future__ import annotations

from edgenext_dense.datasets.coco_shapes import make_coco_shapes
from edgenext_dense.datasets.seg_converters import voc_palette
from edgenext_dense.datasets.shapes_render import (
    COCO_SCENE,
    SHAPE_CLASSES,
    VOC_SCENE,
    Scene,
    SceneConfig,
    ShapeInstance,
    mask_to_polygons,
    render_scene,
    scene_rng,
)
from edgenext_dense.datasets.shapes_writer import MANIFEST_NAME
from edgenext_dense.datasets.voc_shapes import (
    DEFAULT_SEG_CLASSES,
    VOC_CLASSES,
    VOC_ID_OF_SHAPE,
    make_voc_shapes,
)

__all__ = [
    "COCO_SCENE",
    "DEFAULT_SEG_CLASSES",
    "MANIFEST_NAME",
    "SHAPE_CLASSES",
    "VOC_CLASSES",
    "VOC_ID_OF_SHAPE",
    "VOC_SCENE",
    "Scene",
    "SceneConfig",
    "ShapeInstance",
    "make_coco_shapes",
    "make_voc_shapes",
    "mask_to_polygons",
    "render_scene",
    "scene_rng",
    "voc_palette",
]
