"""Logits of the model zoo's own EdgeNeXt (mmpretrain 1.2.0) for a checkpoint and inputs.

    python tests/reference/mmpretrain_logits.py ARCH CKPT INPUTS.pt OUT.pt [--features]

With ``--features`` OUT.pt holds the four raw stage outputs (strides 4-32) instead of logits.

Runs in its own process: mmpretrain is installed without its dependencies (torchvision does not
install beside this torch), so the few modules its package ``__init__`` imports but the EdgeNeXt
backbone never uses are stubbed here, and the stubs never reach the test process.
"""

import importlib.abc
import importlib.machinery
import sys
from unittest import mock

import torch
import torch.nn.functional as F

STUBBED = ("torchvision", "mat4py", "modelindex")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__ = [], spec
        return module

    def exec_module(self, module):
        pass


def main() -> None:
    arch, ckpt, inputs, out = sys.argv[1:5]
    features_only = "--features" in sys.argv[5:]
    sys.meta_path.insert(0, _StubFinder())
    from mmpretrain.models.backbones.edgenext import EdgeNeXt

    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    if features_only:
        backbone = EdgeNeXt(arch=arch, out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
        for i in range(4):  # raw stage outputs: no output norms
            setattr(backbone, f"norm{i}", torch.nn.Identity())
    else:
        backbone = EdgeNeXt(arch=arch, out_indices=-1, gap_before_final_norm=True)
    tensors = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    if features_only:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("norm3.")}
    backbone.load_state_dict(tensors)
    backbone.eval()
    if features_only:
        with torch.no_grad():
            torch.save(list(backbone(torch.load(inputs, weights_only=True))), out)
        return
    with torch.no_grad():
        features = backbone(torch.load(inputs, weights_only=True))[-1]
        logits = F.linear(features, state["head.fc.weight"], state["head.fc.bias"])
    torch.save(logits, out)


if __name__ == "__main__":
    main()
