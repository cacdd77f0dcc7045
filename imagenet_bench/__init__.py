"""Shared code of the ImageNet benchmarking scripts.

Modules are small and import-light on purpose: the table script
(imagenet_benchmarking.py) must not import torch, TensorFlow or timm, so nothing
here imports them at module level except the framework-specific modules
(``torch_*``, ``keras_*``, ``timm_*``), which only the prediction scripts load.
"""
