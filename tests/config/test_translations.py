"""Operators read Chinese: the committed zh-hans catalogue translates every string and is compiled."""

import re
from pathlib import Path

from django.utils import translation

CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"


def entries():
    text = (CATALOGUE / "django.po").read_text(encoding="utf-8")
    for block in text.split("\n\n")[1:]:
        if block.lstrip().startswith("#~"):
            continue  # obsolete
        msgid = "".join(re.findall(r'"(.*)"', re.search(r"^msgid ((?:\".*\"\n?)+)", block, re.M).group(1)))
        msgstr = re.search(r"^msgstr(?:\[0\])? ((?:\".*\"\n?)+)", block, re.M)
        yield block, msgid, "".join(re.findall(r'"(.*)"', msgstr.group(1))) if msgstr else ""


def test_every_string_has_a_chinese_translation_and_none_is_fuzzy():
    missing = [msgid for block, msgid, msgstr in entries() if msgid and (not msgstr or "#, fuzzy" in block)]
    assert missing == []


def test_the_compiled_catalogue_is_used():
    assert (CATALOGUE / "django.mo").stat().st_size > 1000
    with translation.override("zh-hans"):
        assert translation.gettext("Membership CRM") == "会员CRM"
        assert translation.gettext("points ledger") == "积分流水"
