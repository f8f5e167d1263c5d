"""Staff sign-in: lock-out after repeated failures per user name and per address (django-axes), a clear page in
both languages, lock-outs visible to admins, password rules and sessions that end."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings
from django.utils import timezone

from config.security import client_ip

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "Correct-horse-2026"


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5


@pytest.fixture
def staff(db):
    return User.objects.create_user("clerk", password=PASSWORD, is_staff=True)


def sign_in(client, username, password, ip="10.0.0.1", language="en"):
    # The admin's language is the one chosen with the switch (its cookie), not the browser's Accept-Language.
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip)


def test_five_failures_lock_the_user_name_out_even_with_the_right_password(client, axes_on, staff):
    for _ in range(4):
        assert sign_in(client, "clerk", "wrong").status_code == 200  # the form again, with its error
    locked = sign_in(client, "clerk", "wrong")
    assert locked.status_code == 429
    right = sign_in(client, "clerk", PASSWORD)
    assert right.status_code == 429
    html = right.content.decode()
    assert "Sign-in locked" in html and "After 5 failed sign-in attempts" in html and "Try again in 60 minutes" in html
    assert "_auth_user_id" not in client.session
    # from another address the user name stays locked
    assert sign_in(client, "clerk", PASSWORD, ip="10.0.0.2").status_code == 429


def test_the_lock_out_page_speaks_chinese(client, axes_on, staff):
    for _ in range(5):
        sign_in(client, "clerk", "wrong", language="zh-hans")
    html = sign_in(client, "clerk", PASSWORD, language="zh-hans").content.decode()
    assert "登录已锁定" in html and "60 分钟后再试" in html


def test_five_failures_from_one_address_lock_that_address_for_every_user_name(client, axes_on, staff):
    for number in range(5):
        sign_in(client, f"guess{number}", "wrong", ip="10.0.0.9")
    assert sign_in(client, "clerk", PASSWORD, ip="10.0.0.9").status_code == 429
    signed_in = sign_in(client, "clerk", PASSWORD, ip="10.0.0.1")
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"


def test_a_success_before_the_limit_starts_the_count_again(client, axes_on, staff):
    for _ in range(4):
        sign_in(client, "clerk", "wrong")
    assert sign_in(client, "clerk", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, "clerk", "wrong")
    assert sign_in(client, "clerk", PASSWORD).status_code == 302


def test_admins_see_lock_outs_and_lift_them(client, admin_client, axes_on, staff):
    for _ in range(5):
        sign_in(client, "clerk", "wrong")
    listing = admin_client.get("/admin/axes/accessattempt/", HTTP_ACCEPT_LANGUAGE="en")
    assert listing.status_code == 200 and "clerk" in listing.content.decode()
    AccessAttempt.objects.filter(username="clerk").delete()  # what "delete" on that page does
    assert sign_in(client, "clerk", PASSWORD).status_code == 302


def test_tests_sign_in_without_axes_in_the_way(client, staff):
    # The suite runs with AXES_ENABLED off: the test client's login() calls authenticate() without a request.
    assert client.login(username="clerk", password=PASSWORD)


@override_settings(SESSION_COOKIE_AGE=8 * 60 * 60)
def test_a_staff_session_ends_after_eight_hours(client, staff):
    client.post(LOGIN, {"username": "clerk", "password": PASSWORD})
    session = Session.objects.get()
    assert abs(session.expire_date - (timezone.now() + dt.timedelta(hours=8))) < dt.timedelta(minutes=1)


def test_the_default_settings_lock_and_expire(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 60 * 60
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == 1.0
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username"], ["ip_address"]]
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


@pytest.mark.parametrize("password", ["12345678", "password", "clerk2026", "Ab1!"])
def test_weak_staff_passwords_are_refused(staff, password):
    with pytest.raises(ValidationError):
        validate_password(password, user=staff)


def test_a_strong_password_passes(staff):
    assert validate_password("Lantern-quiet-river-42", user=staff) is None


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1", "10.0.0.1"),  # no proxy: a forged header is ignored
        (1, "6.6.6.6, 1.2.3.4", "10.0.0.1", "1.2.3.4"),  # the proxy's entry, not what the client wrote before it
        (2, "1.2.3.4, 10.0.0.5", "10.0.0.1", "1.2.3.4"),
        (1, "", "10.0.0.1", "10.0.0.1"),
    ],
)
def test_the_address_locked_out_is_the_clients(settings, proxies, forwarded, remote, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/admin/login/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    assert client_ip(request) == expected
