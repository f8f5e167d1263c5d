import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from members import services
from members.models import API_SCOPES

from .factories import ChannelFactory, MemberFactory


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    has_broker = bool(settings.CELERY_BROKER_URL)
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)"))
        if "celery_worker" in item.keywords and not (has_broker and on_postgres):
            item.add_marker(pytest.mark.skip(reason="needs a Celery broker (CELERY_BROKER_URL) and PostgreSQL"))


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters and "last used" marks live in the cache; each test starts from zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def channel(db):
    return ChannelFactory(code="pos-shanghai", name="上海南京西路门店")


@pytest.fixture
def make_client(db):
    def make(channel=None, scopes=API_SCOPES):
        channel = channel or ChannelFactory(code="pos-shanghai", name="上海南京西路门店")
        _api_key, raw_key = services.api_key_create(channel=channel, scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        client.channel = channel
        client.raw_key = raw_key
        return client

    return make


@pytest.fixture
def program(db, channel):
    """The demo programme of API.md, with `channel` in it."""
    from loyalty.demo import demo_program

    return demo_program()


@pytest.fixture
def api(make_client, channel, program):
    """A partner client of `channel` (in the demo programme) with every scope."""
    return make_client(channel)


@pytest.fixture
def member(db):
    return MemberFactory(name="张伟", phone="+8613800138000", email="zhang.wei@example.com")


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process even when a broker is configured (CI), for tests of what a page shows."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def no_quiet_hours(program):
    """The programme's marketing messages go out at whatever hour the suite runs: the default quiet hours (21:00-09:00
    in its time zone) would hold them in an evening run. Quiet hours have tests of their own (tests/campaigns)."""
    from campaigns.models import ProgramMessaging

    ProgramMessaging.objects.update_or_create(
        program=program, defaults={"quiet_from": dt.time(0), "quiet_until": dt.time(0)}
    )
