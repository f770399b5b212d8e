"""Deployment: :mod:`.graphs` (what each task's ONNX file computes, built from a config and a
checkpoint), :mod:`.export` (``tools/deploy/export_onnx.py``) and :mod:`.quantize` (its
``--int8``), :mod:`.ort` (the torch-free runtime of ``tools/deploy/onnx_infer.py``) and
:mod:`.evaluate` (``tools/deploy/onnx_eval.py``: an exported file scored with its config's metric).
"""
