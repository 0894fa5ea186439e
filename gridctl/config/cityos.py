"""The ``cityos:`` section: where the block's open-data feed goes (an NGSI-LD context broker).

What is published and why is in docs/cityos.md. Secrets (the broker's bearer token, the key of
the members' pseudonyms) are never in the file: systemd credentials or the environment.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from gridctl.config.base import StrictModel
from gridctl.config.policy import _no_credentials_in_url

#: Base URL of an NGSI-LD broker, without credentials or query string.
BrokerUrl = Annotated[str, Field(pattern=r"^https?://[^/?#]+(/[^?#]*)?$"),
                      AfterValidator(_no_credentials_in_url)]


class CityOs(StrictModel):
    """The city data platform (FIWARE NGSI-LD) feed of ``gridctl cityos export|push``.

    Only block-level aggregates per 30-minute JST period are published, unless ``per_member``
    opts in to one measurement per member under a pseudonymous id (HMAC-SHA256 of the member id
    with the key of the ``pseudonym_key_credential`` credential).
    """

    broker_url: BrokerUrl = Field(description="NGSI-LD broker base URL, e.g. https://broker.example:1026")
    tenant: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$",
        description="NGSILD-Tenant header (none: the broker's default tenant)",
    )
    token_credential: str = Field(
        default="cityos-token", min_length=1,
        description="file name under $CREDENTIALS_DIRECTORY holding the bearer token",
    )
    token_env: str = Field(default="GRIDCTL_CITYOS_TOKEN", min_length=1,
                           description="environment variable with the token outside systemd")
    per_member: bool = Field(
        default=False,
        description="also publish each member's grid exchange per period, under a pseudonymous id",
    )
    pseudonym_key_credential: str = Field(
        default="cityos-pseudonym-key", min_length=1,
        description="credential holding the HMAC key of the members' pseudonyms (per_member only)",
    )
    pseudonym_key_env: str = Field(default="GRIDCTL_CITYOS_PSEUDONYM_KEY", min_length=1)
    entity_id_prefix: str = Field(
        default="urn:ngsi-ld:", pattern=r"^urn:ngsi-ld:([A-Za-z0-9_.-]+:)*$",
        description="start of every entity id; the entity type and site id follow",
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="entities per upsert request")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="per HTTP request [s]")
