"""imagenet-bench: ImageNet accuracy of every pre-trained PyTorch and Keras classifier.

Subpackages by layer, each importing only those below it (tests/test_layers.py holds the
table): ``base`` < ``datasets`` < ``outputs`` < ``models``, ``scoring`` < ``predict``,
``report``. torch, TensorFlow and timm are imported only where a model is built or run
(``models.torch_build``, ``models.timm_registry``, ``models.keras_applications``,
``predict.torch_*``, ``predict.keras_predict``), so the table script imports none of them.
"""
