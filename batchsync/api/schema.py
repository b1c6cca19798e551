"""OpenAPI post-processing: the schema says what the server enforces, no more and no less."""

from __future__ import annotations

from typing import Any


def closed_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Mark every request body `additionalProperties: false`: the API refuses unknown fields.

    A drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]).
    """
    components = result.get("components", {}).get("schemas", {})
    for item in result.get("paths", {}).values():
        for operation in item.values():
            content = (operation.get("requestBody") or {}).get("content", {})
            for media in content.values():
                reference = media.get("schema", {}).get("$ref", "")
                name = reference.rpartition("/")[2]
                if name in components:
                    components[name]["additionalProperties"] = False
    return result
