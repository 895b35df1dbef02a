"""The trained signature model (``signatures.joblib``), shipped as package data.

Rebuilt by ``make model`` (corpus build + ``python -m logsleuth.train corpus/data``).
"""
