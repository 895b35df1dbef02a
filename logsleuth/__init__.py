"""logsleuth: forensic analysis of deep-learning training logs.

>>> import logsleuth
>>> series = logsleuth.read_log("train.log")      # doctest: +SKIP
>>> series.frame.head()                           # long: step, metric, value, phase, ...
>>> logsleuth.diagnose("train.log").verdict       # doctest: +SKIP
>>> logsleuth.audit("runs/")                      # doctest: +SKIP  (a pandas DataFrame, one row per run)
"""

__version__ = "0.1.0"

from . import audit  # noqa: E402  (the package is callable: logsleuth.audit(paths))
from .api import diagnose, read_log  # noqa: E402
from .errors import FormatError, InputError, LogsleuthError  # noqa: E402
from .types import Diagnosis, Event, RunSeries  # noqa: E402

__all__ = ["read_log", "diagnose", "audit", "RunSeries", "Diagnosis", "Event", "LogsleuthError", "InputError",
           "FormatError", "__version__"]
