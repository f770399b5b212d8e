"""The ``edgenext_dense`` registry scope.

Modules registered here are found from mmdet and mmseg configs as ``type='edgenext_dense.X'``:
both libraries' registries descend from mmengine's root registries, and a scoped key is looked
up among the root's children. Task-specific modules (SSDLite neck and head, the DeepLabv3
decode head) register into mmdet's and mmseg's own registries instead, beside the modules they
extend.
"""

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    "model", parent=MMENGINE_MODELS, scope="edgenext_dense", locations=["edgenext_dense.models"]
)
HOOKS = Registry(
    "hook", parent=MMENGINE_HOOKS, scope="edgenext_dense", locations=["edgenext_dense.engine"]
)
