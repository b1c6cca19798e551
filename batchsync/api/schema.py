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


PROGRESS_PATH = "/api/v1/sync-status/sync/batch/progress/{task_id}"
EVENT_STREAM_DESCRIPTION = (
    "Server-sent events (text/event-stream) as PostgreSQL delivers each change on commit: first "
    "`retry:` (ms), then `event: job` or `event: day` with a JSON `data:` line (task_id, kind, "
    "status, total_days, processed_days, success_days, failed_days, skipped_days, rows_loaded, and "
    "for a day its date, day_status, day_rows, day_finished_at; sent_at), and a `: heartbeat` "
    "comment every BATCHSYNC_EVENTS_HEARTBEAT seconds. Needs an ASGI server (uvicorn); a WSGI "
    "server answers 204 and the client polls instead (docs/api.md)."
)


def event_stream_operations(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document the two event streams: async Django views (`api.streams`), which DRF does not list.

    A drf-spectacular postprocessing hook; parameters, security and error answers are those of
    the progress endpoint, whose permission the streams share.
    """
    progress = result.get("paths", {}).get(PROGRESS_PATH, {}).get("get")
    if progress is None:
        return result
    errors = {code: progress["responses"][code] for code in ("401", "403", "404", "500")}
    answers = {
        "200": {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "The stream (under an ASGI server).",
        },
        "204": {"description": "Served by a WSGI server: no stream; poll the progress endpoint instead."},
    }

    def operation(operation_id: str, summary: str, description: str, parameters: list[Any]) -> dict[str, Any]:
        return {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "parameters": parameters,
            "tags": progress["tags"],
            "security": progress["security"],
            "responses": {**answers, **errors},
        }

    result["paths"][f"{PROGRESS_PATH}/events"] = {
        "get": operation(
            "sync_batch_progress_events",
            "A job's live events (server-sent events)",
            f"{EVENT_STREAM_DESCRIPTION} Starts with the job's state now; ends when the job finishes.",
            progress["parameters"],
        )
    }
    result["paths"]["/api/v1/sync-status/sync/batch/events"] = {
        "get": operation(
            "sync_batch_events",
            "Every job's live events (server-sent events)",
            f"{EVENT_STREAM_DESCRIPTION} For the job list; it does not end by itself.",
            [],
        )
    }
    return result
