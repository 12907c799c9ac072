"""`model.model_copy(update=...)` without pydantic's generic copy, for the models copied on hot paths.

The monitor copies an open trade twice per MFE/MAE save (the judged copy and the saved one), about once
every other bar a trade is open. Pydantic's `model_copy` goes through `__copy__` (three `copy()` calls, a
private-attribute check) and then updates the copy in place; for a plain model (no extra, no private
attributes, the stock copy methods) that comes down to one dict copy and one set copy, which is what
`copy_with` does, in about a third of the time. Anything else takes `model_copy` itself. The proposal store
hands out its cached proposals the same way (a copy per caller, and one per state move).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__
_plain: dict[type, bool] = {}  # class -> copies like the stock BaseModel (decided once per class)


def _is_plain(cls: type) -> bool:
    hit = _plain.get(cls)
    if hit is None:
        hit = _plain[cls] = (cls.model_copy is BaseModel.model_copy and cls.__copy__ is BaseModel.__copy__
                             and cls.model_config.get("extra") != "allow")
    return hit


def copy_with(model: M, update: Mapping[str, Any]) -> M:
    """`model.model_copy(update=update)`: the same `__dict__` (in the same order), fields set, extra and
    private values; no validation, as there. Models with extra or private values, or their own copy
    methods, are copied by `model_copy`."""
    cls = type(model)
    if (model.__pydantic_extra__ is not None or getattr(model, "__pydantic_private__", None) is not None
            or not _is_plain(cls)):
        return model.model_copy(update=update)
    out = cls.__new__(cls)
    values = model.__dict__.copy()
    values.update(update)
    fields = set(model.__pydantic_fields_set__)
    fields.update(update)
    _set(out, "__dict__", values)
    _set(out, "__pydantic_extra__", None)
    _set(out, "__pydantic_fields_set__", fields)
    _set(out, "__pydantic_private__", None)
    return out
