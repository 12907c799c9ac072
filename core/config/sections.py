"""The base of every config section: frozen, no unknown keys, no NaN/Infinity, no true/false for a number.

The sections themselves live by topic (`analysis`, `market`, `trading`, `ops`, `deployment` in this
package) and `core.config.model` assembles them; every one inherits these rules from `_Section` here.
"""
from __future__ import annotations

from types import UnionType
from typing import Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator


class _Section(BaseModel):
    # NaN/Infinity (which Python's json accepts) slipped past every bound with a misleading message
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, v, info):
        # pydantic reads true as 1: `"lot_size": true` would have traded 1 lot
        if isinstance(v, bool) and info.field_name and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"{str(v).lower()} is not a number")
        return v


def _numeric(ann) -> bool:
    if ann in (int, float):
        return True
    return get_origin(ann) in (Union, UnionType) and any(a in (int, float) for a in get_args(ann))


