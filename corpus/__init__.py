"""A reproducible, labelled corpus of training logs (not part of the logsleuth package).

Real training runs of tiny PyTorch models on the CPU, each with one injected cause
(:mod:`corpus.runs`), labelled by *measuring* the recorded trajectory
(:mod:`corpus.label`), rendered into the log formats of many frameworks
(:mod:`corpus.render`), and checked against ``logsleuth.read_log``
(:mod:`corpus.validate`). ``python -m corpus.build --out corpus/data`` builds it.
"""
