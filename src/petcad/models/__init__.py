"""The 2.5D CNNs: networks, training with resume and DDP, safetensors checkpoints, prediction.

Public entry points: :class:`petcad.models.data.LesionData`,
:class:`petcad.models.estimator.CNNClassifier`, :func:`petcad.models.registry.build_model`,
:func:`petcad.models.train.train`, :mod:`petcad.models.predict`.
"""
