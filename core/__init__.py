"""What every app shares and no app owns: the domain error hierarchy, the partner API's frame (error body, scopes,
throttling, pagination, OpenAPI helpers), request ids, SQL helpers, idempotent replay and domain events.

`core` imports no app (tests/test_layers.py checks it); apps import `core`.
"""
