"""API.md § Segments: create, count, members, preview, change, delete; scopes; errors; one programme only."""

import pytest

from loyalty import ledger
from loyalty.models import Program, Tier
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

SHANGHAI = {"all": [{"field": "city", "op": "eq", "value": "上海"}]}


@pytest.fixture
def members(program):
    found = []
    for city in ("上海", "上海", "北京"):
        member = MemberFactory(city=city)
        ledger.account_get_or_create(member=member, program=program)
        found.append(member)
    return found


def test_create_then_read_count_and_members(api, members):
    created = api.post("/api/v1/segments/", {"code": "sh", "name": "上海会员", "rule": SHANGHAI}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["code"], body["name"], body["rule"], body["count"]) == ("sh", "上海会员", SHANGHAI, 2)
    assert body["counted_at"]
    detail = api.get("/api/v1/segments/sh/").json()
    assert detail["count"] == 2
    listed = api.get("/api/v1/segments/sh/members/").json()
    assert listed["count"] == 2
    assert sorted(row["member_no"] for row in listed["results"]) == sorted(m.member_no for m in members[:2])
    assert api.get("/api/v1/segments/").json()["results"][0]["code"] == "sh"


def test_preview_stores_nothing(api, members):
    response = api.post("/api/v1/segments/preview/", {"rule": SHANGHAI}, format="json")
    assert response.status_code == 200
    assert response.json() == {"count": 2, "sample": sorted(m.member_no for m in members[:2])}
    assert api.get("/api/v1/segments/").json()["count"] == 0


def test_patch_and_delete(api, members):
    api.post("/api/v1/segments/", {"code": "sh", "name": "上海", "rule": SHANGHAI}, format="json")
    beijing = {"any": [{"field": "city", "op": "in", "value": ["北京"]}]}
    changed = api.patch("/api/v1/segments/sh/", {"rule": beijing}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["rule"], changed.json()["count"]) == (beijing, 1)
    assert api.delete("/api/v1/segments/sh/").status_code == 204
    assert api.get("/api/v1/segments/sh/").status_code == 404


def test_a_bad_rule_is_a_validation_error_on_the_rule(api, members):
    response = api.post(
        "/api/v1/segments/",
        {"code": "x", "name": "x", "rule": {"all": [{"field": "tier", "op": "lte", "value": "gold"}]}},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "tier takes eq, ne, in, not_in" in error["fields"]["rule"][0]
    assert api.get("/api/v1/segments/").json()["count"] == 0


def test_a_duplicate_code_is_refused(api, members):
    api.post("/api/v1/segments/", {"code": "sh", "name": "上海", "rule": SHANGHAI}, format="json")
    again = api.post("/api/v1/segments/", {"code": "sh", "name": "again", "rule": SHANGHAI}, format="json")
    assert again.status_code == 400
    assert "code" in again.json()["error"]["fields"]


def test_scopes(make_client, channel, program, members):
    reader = make_client(channel, scopes=["campaigns:read"])
    assert reader.get("/api/v1/segments/").status_code == 200
    assert (
        reader.post("/api/v1/segments/", {"code": "a", "name": "a", "rule": SHANGHAI}, format="json").status_code == 403
    )
    assert reader.post("/api/v1/segments/preview/", {"rule": SHANGHAI}, format="json").status_code == 403
    outsider = make_client(ChannelFactory(code="crm-other"), scopes=["members:read"])
    assert outsider.get("/api/v1/segments/").status_code == 403


def test_another_programmes_channel_sees_neither_its_segments_nor_its_members(api, make_client, members):
    api.post("/api/v1/segments/", {"code": "sh", "name": "上海", "rule": SHANGHAI}, format="json")
    other = Program.objects.create(code="hk", name="HK", currency="HKD")
    Tier.objects.create(program=other, code="basic", name="Basic", rank=0, upgrade_threshold=0)
    hk_channel = ChannelFactory(code="hk-pos")
    from loyalty.models import ChannelProgram

    ChannelProgram.objects.update_or_create(channel=hk_channel, defaults={"program": other})
    hk = make_client(hk_channel)
    assert hk.get("/api/v1/segments/sh/").status_code == 404
    assert hk.post("/api/v1/segments/preview/", {"rule": SHANGHAI}, format="json").json()["count"] == 0
