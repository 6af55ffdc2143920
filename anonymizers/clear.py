"""Clearing a field: NULL where the column allows it, otherwise a constant.

Used where nothing of the value may stay (special-needs notes, password hashes, last login IP). A NOT NULL
column of text gets the empty string; any other NOT NULL column needs a constant in the catalog, because
there is no neutral date or number and guessing one would be silently wrong (fail closed).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from anonymizers.base import KINDS, TEXT_KINDS, ColumnSpec, Context, FunctionAnonymizer, Option, any_value
from anonymizers.locales import Locale

_CONSTANT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "text": (str,),
    "integer": (int,),
    "decimal": (int, float, decimal.Decimal),
    "boolean": (bool,),
    "date": (dt.date, str),
    "datetime": (dt.datetime, str),
}


def _numpy_kind(dtype: Any, kind: type) -> bool:
    return isinstance(dtype, np.dtype) and np.issubdtype(dtype, kind)


def nulls_like(values: pd.Series) -> pd.Series:
    """All-missing Series: NaT/NA for dtypes that hold missing values natively, else None objects."""
    dtype = values.dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) or _numpy_kind(dtype, np.datetime64):
        return pd.Series(pd.array([None] * len(values), dtype=dtype), index=values.index, name=values.name)
    return pd.Series([None] * len(values), index=values.index, dtype=object, name=values.name)


def constant_for(column: ColumnSpec, value: Any) -> Any:
    """The constant a NOT NULL column gets; ValueError when it must be configured or has the wrong type."""
    if value is None:
        if column.kind in TEXT_KINDS:
            return ""
        raise ValueError(
            f"clear on a NOT NULL {column.kind} column needs a constant; add options: {{value: ...}} "
            "to the catalog entry, or make the column nullable"
        )
    allowed = _CONSTANT_TYPES[column.kind]
    wrong_bool = isinstance(value, bool) and column.kind != "boolean"
    if wrong_bool or not isinstance(value, allowed):
        names = " or ".join(t.__name__ for t in allowed)
        raise ValueError(f"clear: the constant for a {column.kind} column must be {names}")
    if isinstance(value, str) and column.kind in ("date", "datetime"):
        try:
            parse = dt.date.fromisoformat if column.kind == "date" else dt.datetime.fromisoformat
            return parse(value)
        except ValueError:
            raise ValueError(f"clear: the constant for a {column.kind} column must be ISO-8601") from None
    return value


def cleared(values: pd.Series, column: ColumnSpec, value: Any = None) -> pd.Series:
    """Every row cleared: null if the column is nullable, else the constant (also for null inputs)."""
    if column.nullable:
        return nulls_like(values)
    constant = constant_for(column, value)
    out = pd.Series([constant] * len(values), index=values.index, dtype=object, name=values.name)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.to_datetime(out).dt.tz_localize(dtype.tz)
    numeric = column.kind not in TEXT_KINDS and (_numpy_kind(dtype, np.number) or _numpy_kind(dtype, np.bool_))
    if isinstance(dtype, pd.StringDtype) or _numpy_kind(dtype, np.datetime64) or numeric:
        return out.astype(dtype)
    return out


def _transform(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
    return cleared(values, ctx.column, options["value"])


def _check(column: ColumnSpec, options: Mapping[str, Any], key_id: str | None, locale: Locale) -> None:
    if not column.nullable:
        constant_for(column, options["value"])


CLEAR = FunctionAnonymizer("clear", KINDS, _transform, {"value": Option(None, any_value)}, _check, replaces=True)
