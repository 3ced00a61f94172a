"""Restora's models: noise classifiers, restoration models, their weights, training and evaluation.

This package runs on its own (``restora run``, training, evaluation) and imports nothing from
``app``, ``workers`` or ``core``. The worker sees only ``models.pipeline.Pipeline``.
"""
