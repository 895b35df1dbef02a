"""Training logs written by the real frameworks (Trainer, Lightning, Keras, plain loops).

The sibling corpus (:mod:`corpus.build`) prints trajectories with imitation printers; this
one runs tiny CPU trainings *through* the frameworks installed from PyPI and keeps their
own output, so that logsleuth is checked on what those frameworks really print. See
``corpus/frameworks/README.md``.
"""
