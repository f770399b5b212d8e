"""Logits of the model zoo's own EdgeNeXt (mmpretrain 1.2.0) for a checkpoint and inputs.

    python tests/reference/mmpretrain_logits.py ARCH CKPT INPUTS.pt OUT.pt [--features]

With ``--features`` OUT.pt holds the four raw stage outputs (strides 4-32) instead of logits.

Runs in its own process, so that mmpretrain (installed without its dependencies; see
:mod:`edgenext_dense.analysis.mmpretrain_reference`) never enters the test process.
"""

import sys

import torch
import torch.nn.functional as F

from edgenext_dense.analysis.mmpretrain_reference import (
    build_mmpretrain_edgenext,
    mmpretrain_edgenext_class,
)


def main() -> None:
    arch, ckpt, inputs, out = sys.argv[1:5]
    features_only = "--features" in sys.argv[5:]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    if features_only:  # raw stage outputs: no output norms
        backbone = build_mmpretrain_edgenext(arch, out_indices=(0, 1, 2, 3))
    else:
        EdgeNeXt = mmpretrain_edgenext_class()
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
