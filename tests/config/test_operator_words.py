"""Operators read Chinese: every label the admin shows (model and field names, list columns, filters, form fields)
is translated in zh-hans, the admin answers in zh-hans whatever the browser asks unless the operator switched,
"Change" reads 修改, and the member's history reads as words, not JSON."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import label_for_field
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from loyalty.ledger import account_get_or_create
from loyalty.models import Account
from members import services as member_services

pytestmark = pytest.mark.django_db

OUR_APPS = {"members", "loyalty", "analytics", "campaigns", "config"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")
# Words that read the same in a Chinese office, and the symbols of the scores and models (RFM's R, F and M; the
# BG/NBD and Gamma-Gamma parameters r, alpha, a, b, p, q, v as the papers name them).
SAME_IN_CHINESE = {"SKU", "CSV", "API", "ID", "—", "-", "R", "F", "M", "RFM"}
MODEL_SYMBOLS = {"r", "alpha", "a", "b", "p", "q", "v"}


def _untranslated(labels):
    return sorted(
        {
            label
            for label in labels
            if label
            and label not in SAME_IN_CHINESE
            and label.lower() not in MODEL_SYMBOLS
            and not CHINESE.search(label)
        }
    )


def _our_admins():
    return [
        (model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label in OUR_APPS
    ]


def test_every_model_and_field_name_is_translated():
    labels = []
    with translation.override("zh-hans"):
        for model in apps.get_models():
            if model._meta.app_label not in OUR_APPS:
                continue
            labels += [str(model._meta.verbose_name), str(model._meta.verbose_name_plural)]
            for field in model._meta.get_fields():
                if (field.auto_created and not field.concrete) or field.name == "id":
                    continue
                labels.append(str(field.verbose_name))
    assert _untranslated(labels) == []


def test_every_admin_column_filter_and_form_label_is_translated(admin_user):
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    found = {}
    with translation.override("zh-hans"):
        for model, model_admin in _our_admins():
            labels = []
            for name in model_admin.get_list_display(request):
                if name != "action_checkbox":
                    labels.append(str(label_for_field(name, model, model_admin)))
            for item in model_admin.get_list_filter(request):
                if isinstance(item, str):
                    labels.append(str(label_for_field(item.split("__")[0], model, model_admin)))
                elif isinstance(item, tuple):
                    labels.append(str(label_for_field(item[0], model, model_admin)))
                else:
                    labels.append(str(item.title))
            form = model_admin.get_form(request)()
            labels += [str(field.label) for field in form.fields.values() if field.label]
            labels += [str(title) for title, _options in model_admin.get_fieldsets(request) if title]
            for _action, _name, description in model_admin._get_base_actions():
                labels.append(str(description))
            if _untranslated(labels):
                found[model._meta.label] = _untranslated(labels)
    assert found == {}


def test_every_changelist_renders_its_headers_in_chinese(admin_client, channel, program, member):
    account_get_or_create(member=member, program=program)
    header = re.compile(r'<th scope="col"[^>]*>.*?<div class="text">(?:<a [^>]*>|<span>)(.*?)(?:</a>|</span>)', re.S)
    found = {}
    for model, _model_admin in _our_admins():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
        labels = [text.strip() for text in header.findall(page) if "<input" not in text]
        if _untranslated(labels):
            found[url] = _untranslated(labels)
    assert found == {}


def test_home_page_and_sidebar_say_change_as_修改(admin_client, member):
    # 切换 (switch) is right for the language switch and Django's "toggle" buttons, never for "Change".
    switch = re.compile(r"切换(?:</button>|主题|导航)|正逆序切换")
    for url in ("/admin/", reverse("admin:members_member_changelist")):
        page = admin_client.get(url).content.decode()
        assert "修改<" in page or "来修改" in page
        assert "切换" not in switch.sub("", page)


def test_a_points_account_reads_as_member_and_programme(program, member):
    account = account_get_or_create(member=member, program=program)
    assert str(Account.objects.get(pk=account.pk)) == f"张伟 ({member.member_no}) · 会员计划 Demo"


def test_the_admin_is_chinese_for_an_english_browser_until_the_operator_switches(admin_client):
    english_browser = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
    page = admin_client.get("/admin/", **english_browser).content.decode()
    assert '<html lang="zh-hans"' in page and "会员CRM" in page
    assert 'id="crm-language-select"' in page  # the switch, in the header
    admin_client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    page = admin_client.get("/admin/", **english_browser).content.decode()
    assert '<html lang="en"' in page and "Membership CRM" in page
    admin_client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    assert '<html lang="zh-hans"' in admin_client.get("/admin/", **english_browser).content.decode()


def test_the_api_still_answers_in_the_language_the_partner_asks(api):
    english = api.get("/api/v1/members/NOPE/", HTTP_ACCEPT_LANGUAGE="en").json()
    chinese = api.get("/api/v1/members/NOPE/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert english["error"]["code"] == chinese["error"]["code"] == "not_found"
    assert not CHINESE.search(english["error"]["message"]) and CHINESE.search(chinese["error"]["message"])


def test_the_member_history_reads_as_words(admin_client, admin_user, member):
    member_services.member_update(
        member=member, data={"city": "北京", "gender": "female"}, consents={"sms": True}, actor=admin_user
    )
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "城市: — → 北京" in page
    assert "性别: 未知 → 女" in page
    assert "短信授权: 是" in page
    assert '{"city"' not in page and "[&quot;" not in page


def test_the_two_box_selector_of_scopes_speaks_chinese(admin_client):
    catalogue = admin_client.get("/admin/jsi18n/").content.decode()
    # The catalogue is JavaScript with \\u escapes: "Choose all %s" -> 选择全部%s.
    assert '"Choose all %s": "\\u9009\\u62e9\\u5168\\u90e8%s"' in catalogue
