"""One birthday rule and one contact rule (the model's), the same in the API, the admin, the import and the
services; the lower birthday bound is also a database constraint."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from core.errors import ValidationFailed
from members import services
from members.importing.services import members_import
from members.models import Member
from tests.factories import MemberFactory
from tests.members.test_admin import form_data

pytestmark = pytest.mark.django_db

TOMORROW = "tomorrow"
BAD_BIRTHDAYS = {
    TOMORROW: "A birthday cannot be in the future.",
    "1899-12-31": "A birthday before 1900 is not plausible.",
}


def zh(message):
    """Partners and operators are answered in zh-hans, the default language."""
    with translation.override("zh-hans"):
        return translation.gettext(message)


def _day(text):
    return (timezone.localdate() + dt.timedelta(days=1)).isoformat() if text == TOMORROW else text


@pytest.mark.parametrize("birthday", BAD_BIRTHDAYS)
def test_the_api_the_admin_the_import_and_the_service_refuse_the_same_birthdays(api, admin_client, birthday):
    message = zh(BAD_BIRTHDAYS[birthday])
    day = _day(birthday)

    response = api.post("/api/v1/members/", {"name": "王芳", "phone": "13800138000", "birthday": day}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"birthday": [message]}

    url = "/admin/members/member/add/"
    page = admin_client.post(
        url, form_data(admin_client, url, name="王芳", phone="13800138000", gender="unknown", birthday=day)
    )
    assert page.status_code == 200 and page.context["adminform"].form.errors == {"birthday": [message]}

    result = members_import(data=f"name,phone,birthday\n王芳,13800138000,{day}\n".encode(), skip_errors=True)
    assert result.outcomes[0].row.errors == [("birthday", message)]

    with pytest.raises(ValidationFailed) as refused:
        services.member_create(name="王芳", phone="+8613800138000", birthday=dt.date.fromisoformat(day))
    assert refused.value.fields == {"birthday": [message]}
    assert not Member.objects.exists()


def test_the_api_the_admin_the_import_and_the_service_refuse_a_member_without_a_contact(api, admin_client):
    message = zh("Give at least one of phone, email or external_id.")

    response = api.post("/api/v1/members/", {"name": "王芳"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"non_field_errors": [message]}

    url = "/admin/members/member/add/"
    page = admin_client.post(url, form_data(admin_client, url, name="王芳", gender="unknown"))
    assert page.status_code == 200 and page.context["adminform"].form.non_field_errors() == [message]

    result = members_import(data="name,phone,city\n王芳,,上海\n".encode(), skip_errors=True)
    assert result.outcomes[0].row.errors == [("phone", message)]

    with pytest.raises(ValidationFailed) as refused:
        services.member_create(name="王芳")
    assert refused.value.fields == {"non_field_errors": [message]}
    assert not Member.objects.exists()


def test_a_member_known_by_a_channel_id_alone_is_valid_and_stays_editable(channel, admin_client):
    member = services.member_create(name="王芳", channel=channel, external_id="CARD-1")
    services.member_update(member=member, data={"city": "上海"})
    member.refresh_from_db()
    assert (member.phone, member.email, member.city) == (None, None, "上海")


def test_the_database_refuses_a_birthday_before_1900_written_around_the_services():
    member = MemberFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.filter(pk=member.pk).update(birthday=dt.date(1899, 12, 31))
    member.refresh_from_db()
    assert member.birthday is None
