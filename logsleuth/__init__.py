"""logsleuth: forensic analysis of deep-learning training logs.

>>> import logsleuth
>>> series = logsleuth.read_log("train.log")      # doctest: +SKIP
>>> series.frame.head()                           # long: step, metric, value, phase, ...
"""

__version__ = "0.1.0"

from .api import read_log  # noqa: E402
from .errors import FormatError, InputError, LogsleuthError  # noqa: E402
from .types import Event, RunSeries  # noqa: E402

__all__ = ["read_log", "RunSeries", "Event", "LogsleuthError", "InputError", "FormatError", "__version__"]
