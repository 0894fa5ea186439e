"""Render an :class:`~gridctl.cityos.model.Entity` in NGSI-LD key-values or normalized form.

Both forms come from the one entity, so they always carry the same data:
:func:`simplify` turns a normalized entity back into its key-values form (the test and the
validator rely on that). Every document carries its JSON-LD ``@context`` (sent as
``application/ld+json``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gridctl.cityos.model import AttributeKind, Entity

#: JSON-LD contexts of the emitted entities: the three Smart Data Model subjects, then the core.
CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.EnergyCommunity/master/context.jsonld",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Energy/master/context.jsonld",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.GreenEnergy/master/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
)
FORMS = ("keyvalues", "normalized")
_TOP_LEVEL = ("id", "type", "@context")


def key_values(entity: Entity) -> dict[str, Any]:
    """The key-values form: each attribute is its bare value."""
    doc: dict[str, Any] = {"id": entity.id, "type": entity.type}
    for attribute in entity.attributes:
        doc[attribute.name] = attribute.value
    doc["@context"] = list(CONTEXT)
    return doc


def normalized(entity: Entity) -> dict[str, Any]:
    """The normalized form: ``{"type": "Property", "value": ..., "observedAt", "unitCode"}``."""
    doc: dict[str, Any] = {"id": entity.id, "type": entity.type}
    for attribute in entity.attributes:
        if attribute.kind is AttributeKind.RELATIONSHIP:
            body: dict[str, Any] = {"type": attribute.kind.value, "object": attribute.value}
        else:
            body = {"type": attribute.kind.value, "value": attribute.value}
        if attribute.observed_at is not None:
            body["observedAt"] = _utc_ms(attribute.observed_at)
        if attribute.unit_code is not None:
            body["unitCode"] = attribute.unit_code
        doc[attribute.name] = body
    doc["@context"] = list(CONTEXT)
    return doc


def render(entity: Entity, form: str) -> dict[str, Any]:
    """``key_values`` or ``normalized`` by name (one of :data:`FORMS`)."""
    if form == "keyvalues":
        return key_values(entity)
    if form == "normalized":
        return normalized(entity)
    raise ValueError(f"unknown form '{form}' (one of {', '.join(FORMS)})")


class NotNormalizedError(ValueError):
    """A document is not a well-formed normalized NGSI-LD entity."""


def simplify(doc: dict[str, Any]) -> dict[str, Any]:
    """The key-values form of a normalized entity (``value`` / ``object`` of every attribute).

    Raises
    ------
    NotNormalizedError
        An attribute is not an object with a ``type`` of Property, GeoProperty or
        Relationship and the matching ``value`` or ``object`` key.
    """
    out: dict[str, Any] = {key: doc[key] for key in _TOP_LEVEL if key in doc}
    for name, body in doc.items():
        if name in _TOP_LEVEL:
            continue
        kind = body.get("type") if isinstance(body, dict) else None
        key = "object" if kind == AttributeKind.RELATIONSHIP.value else "value"
        if kind not in {k.value for k in AttributeKind} or key not in body:
            raise NotNormalizedError(f"{doc.get('id')}: attribute '{name}' is not a normalized "
                                     f"NGSI-LD {kind or 'attribute'} (needs type and {key})")
        out[name] = body[key]
    return out


def _utc_ms(stamp: dt.datetime) -> str:
    return stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
