"""Shared code of the ImageNet benchmarking scripts.

Modules are small and import-light on purpose: the table script
(imagenet_benchmarking.py) must not import torch, TensorFlow or timm, so nothing
here imports them at module level except ``torch_*`` and ``timm_registry`` (torch),
and ``keras_predict`` / ``keras_applications`` (TensorFlow, loaded only in the Keras
script's model processes); ``sources``, ``keras_registry``, ``keras_hub_registry`` and
``keras_worker``'s parent side import neither.
"""
