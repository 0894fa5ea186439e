"""Shared building blocks of the configuration schema: the strict base model and typed fields.

Every model is frozen and forbids unknown keys, so a typo in a site file is an error at load,
never a silently ignored setting.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Lower-case identifier used for every id in a site file (nodes, devices, routers, tariffs...).
Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$"),
    Field(description="identifier: lower-case letters, digits, '-', '_' or '.', at most 64"),
]

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
PositivePercent = Annotated[float, Field(gt=0, le=100)]
YenPerKwh = Annotated[Decimal, Field(ge=Decimal("-1000"), le=Decimal("1000"))]
NonNegativeYen = Annotated[Decimal, Field(ge=0)]


class StrictModel(BaseModel):
    """Frozen model that rejects unknown keys."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        validate_default=True,
    )
