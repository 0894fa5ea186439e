"""Who issues the members' statements: the qualified-invoice issuer (適格請求書発行事業者).

A Japanese qualified invoice (適格請求書, the invoice system since October 2023) names its issuer
and the issuer's registration number: 'T' followed by 13 digits (a corporation's number, or a
number assigned to a sole proprietor). The statements of ``gridctl settle report`` print both.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from gridctl.config.base import StrictModel

REGISTRATION_NUMBER = re.compile(r"T\d{13}")


class Invoice(StrictModel):
    """The issuer block of every member statement."""

    issuer_name: str = Field(min_length=1, description="the licensed retailer or operator issuing statements")
    registration_number: str = Field(
        description="qualified-invoice issuer registration number: 'T' and 13 digits (T1234567890123)"
    )
    address: str = Field(default="", description="issuer's postal address, printed under its name")
    contact: str = Field(default="", description="phone or e-mail for questions about a statement")

    @field_validator("registration_number")
    @classmethod
    def _t_and_13_digits(cls, value: str) -> str:
        if not REGISTRATION_NUMBER.fullmatch(value):
            raise ValueError(f"'{value}' is not a qualified-invoice registration number: 'T' and 13 digits")
        return value
