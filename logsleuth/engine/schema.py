"""The long frame, defined once: its columns, their Arrow and pandas types, and ``validate``.

One row per printed value. Every producer -- the text parsers (Arrow tables per chunk),
the artefact readers (event files, ``trainer_state.json``, metrics CSVs, MLflow runs), user
formats, merged attempts -- hands over a frame of exactly this shape, and
:class:`logsleuth.types.RunSeries` checks it with :func:`validate` when it is built.

========  =============================  ===========================================
column    pandas dtype (Arrow type)      meaning
========  =============================  ===========================================
step      Int64 (int64, nullable)        the training step; <NA> where none is known
metric    category (dictionary string)   canonical metric name (``loss``, ``lr`` ...)
value     float64                        the printed value; nan / inf are kept
phase     category (dictionary string)   ``train`` or ``eval``
segment   int64                          0, then +1 at every restart of the run
rank      Int64 (int64, nullable)        the process rank where the line names one
epoch     float64                        the epoch where known, else nan
line      int64                          the 1-based physical line that printed it
========  =============================  ===========================================
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: the columns, in output order
COLUMNS = ("step", "metric", "value", "phase", "segment", "rank", "epoch", "line")
#: each column's pandas dtype
DTYPES = {"step": "Int64", "metric": "category", "value": "float64", "phase": "category", "segment": "int64",
          "rank": "Int64", "epoch": "float64", "line": "int64"}
PHASES = frozenset({"train", "eval"})


class SchemaError(ValueError):
    """A producer handed over a frame that is not the long frame."""


@lru_cache(maxsize=1)
def arrow_schema() -> pa.Schema:
    """The rows' Arrow schema (metric and phase dictionary-encoded), for the chunk tables."""
    import pyarrow as pa

    return pa.schema([("step", pa.int64()), ("metric", pa.dictionary(pa.int32(), pa.string())),
                      ("value", pa.float64()), ("phase", pa.dictionary(pa.int8(), pa.string())),
                      ("segment", pa.int64()), ("rank", pa.int64()), ("epoch", pa.float64()), ("line", pa.int64())])


def empty_frame() -> pd.DataFrame:
    """A frame with no rows and the right dtypes."""
    import pandas as pd

    return pd.DataFrame({c: [] for c in COLUMNS}).astype(DTYPES)


def from_arrow(tables: Iterable[pa.Table]) -> pd.DataFrame:
    """The chunks' Arrow tables (in :func:`arrow_schema`) as one pandas frame."""
    import pyarrow as pa

    tables = list(tables)
    if not tables:
        return empty_frame()
    frame = pa.concat_tables(tables).unify_dictionaries().to_pandas(integer_object_nulls=False)
    frame["step"] = frame["step"].astype("Int64")
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` cast to the schema's dtypes (columns in order; for producers that build
    their rows with plain types)."""
    return frame.loc[:, list(COLUMNS)].astype(DTYPES)


def problems(frame: pd.DataFrame) -> list[str]:
    """What makes ``frame`` differ from the long frame (empty: it is one)."""
    found = []
    if tuple(frame.columns) != COLUMNS:
        return [f"columns {list(frame.columns)}, expected {list(COLUMNS)}"]
    for column, dtype in DTYPES.items():
        if str(frame[column].dtype) != dtype:
            found.append(f"column {column} is {frame[column].dtype}, expected {dtype}")
    if not found and len(frame):
        phases = set(frame["phase"].cat.categories) - PHASES
        if phases:
            found.append(f"phase has {sorted(phases)}, expected only train / eval")
        if (frame["line"].to_numpy() < 0).any():
            found.append("line has negative numbers")
    return found


def validate(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` unchanged when it is the long frame; :class:`SchemaError` saying what is
    wrong otherwise."""
    found = problems(frame)
    if found:
        raise SchemaError("not a logsleuth frame: " + "; ".join(found))
    return frame
