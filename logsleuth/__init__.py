"""logsleuth: forensic analysis of deep-learning training logs.

>>> import logsleuth
>>> series = logsleuth.read_log("train.log")      # doctest: +SKIP
>>> series.frame.head()                           # long: step, metric, value, phase, ...
>>> logsleuth.diagnose("train.log").verdict       # doctest: +SKIP
>>> logsleuth.audit("runs/")                      # doctest: +SKIP  (a pandas DataFrame, one row per run)

The names below are imported on first use, so that the scanning worker processes (which
import ``logsleuth.parallel``) stay small.
"""

from importlib import import_module
from typing import Any

from .errors import FormatError, InputError, LogsleuthError

__version__ = "0.1.0"

_LAZY = {"read_log": ".api", "diagnose": ".api", "RunSeries": ".types", "Diagnosis": ".types", "Event": ".types"}

__all__ = ["read_log", "diagnose", "audit", "RunSeries", "Diagnosis", "Event", "LogsleuthError", "InputError",
           "FormatError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "audit":  # the package is callable: logsleuth.audit(paths)
        return import_module(".audit", __name__)
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'logsleuth' has no attribute {name!r}")
