"""JSON Schema of the site file, for editors (yaml-language-server) and reviewers."""

from __future__ import annotations

import json

from gridctl.config.site import SiteConfig

SCHEMA_ID = "https://gridctl.example/schema/site.json"


def site_json_schema() -> dict:
    """The JSON Schema of a site file (validation mode: what may be written)."""
    schema = SiteConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "gridctl site configuration"
    return schema


def site_json_schema_text() -> str:
    """The schema as stable, pretty-printed JSON text ending with a newline."""
    return json.dumps(site_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
