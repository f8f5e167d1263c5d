"""OpenAPI helpers shared by every app's API: API.md's error body as a schema, added to every partner operation."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "member_no": {"type": "string", "description": "with duplicate_member"},
                "request_id": {"type": "string", "description": "with server_error"},
            },
        }
    },
}
ERROR_RESPONSES = {
    "400": "validation_error: a field is missing or wrong, or the body is not JSON",
    "401": "not_authenticated: no key, an unknown key or a revoked key",
    "403": "permission_denied: the key lacks the endpoint's scope",
    "404": "not_found",
    "409": "a refusal: duplicate_member, insufficient_points, idempotency_conflict, member_not_active, ...",
    "429": "throttled: over the key's rate; see Retry-After",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: every partner operation documents API.md's error body."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                if status == "400" and operation.get("operationId", "").endswith(("_retrieve", "_list")):
                    continue
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
