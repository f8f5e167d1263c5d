"""The partner API's frame (API.md: Authentication and scopes, Errors): every refusal has the one error body."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from members import services
from members.models import ApiKey

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_no_key_is_401_with_the_error_body():
    error = assert_error(APIClient().get("/api/v1/members/"), 401, "not_authenticated")
    assert "fields" not in error


def test_unknown_key_is_401(channel):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Api-Key ck_00000000.not-a-real-key")
    response = client.get("/api/v1/members/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"


def test_wrong_scheme_is_401(channel):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer abc")
    assert_error(client.get("/api/v1/members/"), 401, "not_authenticated")


def test_revoked_key_is_401(make_client):
    client = make_client()
    api_key = ApiKey.objects.get()
    assert client.get("/api/v1/members/").status_code == 200
    services.api_key_revoke(api_key=api_key)
    assert_error(client.get("/api/v1/members/"), 401, "not_authenticated")


def test_key_without_the_scope_is_403(make_client):
    client = make_client(scopes=["points:read"])
    error = assert_error(client.get("/api/v1/members/"), 403, "permission_denied")
    assert "members:read" in error["message"]


def test_read_scope_does_not_allow_writes(make_client):
    client = make_client(scopes=["members:read"])
    assert client.get("/api/v1/members/").status_code == 200
    assert_error(
        client.post("/api/v1/members/", {"name": "李娜", "phone": "13800138000"}, format="json"),
        403,
        "permission_denied",
    )


def test_only_the_hash_of_a_key_is_stored(make_client):
    client = make_client()
    api_key = ApiKey.objects.get()
    assert client.raw_key not in (api_key.key_hash, api_key.prefix)
    assert client.raw_key.startswith(api_key.prefix)


@override_settings(API_THROTTLE_RATE="3/min")
def test_over_the_rate_is_429_with_retry_after(make_client):
    client = make_client()
    for _ in range(3):
        assert client.get("/api/v1/members/").status_code == 200
    response = client.get("/api/v1/members/")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1


def test_rate_is_per_key_and_per_channel_setting(make_client, channel):
    channel.throttle_rate = "2/min"
    channel.save()
    first = make_client(channel)
    second = make_client(channel)
    assert [first.get("/api/v1/members/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/members/").status_code == 200


def test_unknown_endpoint_is_404_json(api):
    assert_error(api.get("/api/v1/nothing-here/"), 404, "not_found")


def test_wrong_method_is_405(api):
    assert_error(api.put("/api/v1/members/", {}, format="json"), 405, "method_not_allowed")


def test_not_json_is_400(api):
    response = api.post("/api/v1/members/", data="{not json", content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_wrong_media_type_is_415(api):
    response = api.post("/api/v1/members/", data="name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_ten_megabyte_string_is_400_not_500(api):
    response = api.post("/api/v1/members/", {"name": "x" * (10 * 1024 * 1024), "phone": "13800138000"}, format="json")
    error = assert_error(response, 400, "validation_error")
    assert "name" in error["fields"]


def test_unhandled_error_is_500_with_a_request_id_and_no_trace(api, monkeypatch):
    from members import selectors

    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "member_by_number", explode)
    api.raise_request_exception = False
    response = api.get("/api/v1/members/100000017/", HTTP_X_REQUEST_ID="trace-me-1")
    error = assert_error(response, 500, "server_error")
    assert error["request_id"] == "trace-me-1"
    assert "secret internals" not in response.content.decode()
    assert response["X-Request-ID"] == "trace-me-1"


def test_pagination_shape_and_page_size_cap(api):
    from tests.factories import MemberFactory

    MemberFactory.create_batch(3)
    body = api.get("/api/v1/members/?page_size=2").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert api.get("/api/v1/members/?page_size=5000").json()["count"] == 3


def test_schema_and_docs_are_served_without_a_key(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/members/" in schema.json()["paths"]
    assert "ApiKey" in schema.json()["components"]["securitySchemes"]
    # every partner operation documents the one error body
    create = schema.json()["paths"]["/api/v1/members/"]["post"]["responses"]
    assert create["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()


def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_healthz_answers_503_when_the_database_does_not(client, monkeypatch):
    from django.db import OperationalError, connection

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503


def test_openapi_schema_documents_every_endpoint_without_warnings():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out)
    assert "/api/v1/redemptions/" in out.getvalue() and "/api/v1/coupons/{code}/redeem/" in out.getvalue()


def test_create_api_key_prints_the_key_last_and_joins_the_only_programme(program):
    import io

    from django.core.management import call_command

    from loyalty.models import ChannelProgram
    from members.models import ApiKey, Channel

    out = io.StringIO()
    call_command("create_api_key", "new-pos", "--scopes", "members:read,orders:write", stdout=out, stderr=io.StringIO())
    raw_key = out.getvalue().strip().splitlines()[-1]
    api_key = ApiKey.objects.get(channel__code="new-pos")
    assert raw_key.startswith(api_key.prefix) and api_key.scopes == ["members:read", "orders:write"]
    assert ChannelProgram.objects.get(channel=Channel.objects.get(code="new-pos")).program == program
