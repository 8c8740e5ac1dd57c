"""Model code: preprocessing, Faster R-CNN detector (torchvision names), heads and losses.

Import the submodules directly (``qdtrack.model.detector``, ``qdtrack.model.qdtrack``, ...):
this package file imports nothing, so that reading the model's settings
(``qdtrack.model.config``) does not build the network's modules. The model depends on
nothing else in ``qdtrack`` but ``structures``, ``schema`` and ``resize``.
"""
