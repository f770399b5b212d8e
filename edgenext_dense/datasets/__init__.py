"""Dataset helpers: deterministic synthetic shape datasets for the no-download demo."""

from edgenext_dense.datasets.synthetic import (
    COCO_SCENE,
    DEFAULT_SEG_CLASSES,
    MANIFEST_NAME,
    SHAPE_CLASSES,
    VOC_CLASSES,
    VOC_ID_OF_SHAPE,
    VOC_SCENE,
    Scene,
    SceneConfig,
    ShapeInstance,
    make_coco_shapes,
    make_voc_shapes,
    mask_to_polygons,
    render_scene,
    scene_rng,
    voc_palette,
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
