"""Offline validation of emitted entities against the vendored Smart Data Models JSON Schemas.

The schemas (``schemas/``, see its NOTICE.md) ``$ref`` the Smart Data Models' common schema by
its public URL; a :class:`referencing.Registry` preloaded with the vendored copies resolves every
such reference, and has no retrieval function, so validation never touches the network (an
unknown reference is an error, not a download).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from gridctl.cityos.render import NotNormalizedError, simplify

#: Vendored schema files by entity type; ``common-schema.json`` is what they reference.
SCHEMA_FILES = {
    "EnergyCommunity": "EnergyCommunity.schema.json",
    "ACMeasurement": "ACMeasurement.schema.json",
    "GreenEnergyMeasurement": "GreenEnergyMeasurement.schema.json",
}
COMMON_SCHEMA_FILE = "common-schema.json"


@dataclass(frozen=True)
class Problem:
    """Why an entity does not conform: its id, where in it, and what is wrong (one line)."""

    entity_id: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.entity_id}: {self.path or '(entity)'}: {self.message}"


def _load(name: str) -> dict[str, Any]:
    text = resources.files("gridctl.cityos").joinpath("schemas", name).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def registry() -> Registry:
    """Every vendored schema under its ``$id`` (no retrieval: offline only)."""
    names = [COMMON_SCHEMA_FILE, *SCHEMA_FILES.values()]
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in map(_load, names)
    )


@functools.cache
def _validator(entity_type: str) -> Draft202012Validator:
    schema = _load(SCHEMA_FILES[entity_type])
    return Draft202012Validator(schema, registry=registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def problems(doc: dict[str, Any], form: str) -> list[Problem]:
    """Every way ``doc`` (key-values or normalized) breaks its Smart Data Model ([] if none).

    A normalized entity is checked for NGSI-LD structure, then its values are validated as the
    key-values form the schema describes.
    """
    entity_id = str(doc.get("id", "?"))
    if form == "normalized":
        try:
            doc = simplify(doc)
        except NotNormalizedError as exc:
            return [Problem(entity_id, "", str(exc).split(": ", 1)[-1])]
    entity_type = doc.get("type")
    if entity_type not in SCHEMA_FILES:
        return [Problem(entity_id, "type", f"no vendored schema for type {entity_type!r}")]
    body = {key: value for key, value in doc.items() if key != "@context"}
    return [
        Problem(entity_id, "/".join(str(p) for p in error.absolute_path), error.message)
        for error in sorted(_validator(entity_type).iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
