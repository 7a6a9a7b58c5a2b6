"""Every text a person reads has its Chinese: the project catalogue (locale/zh_Hans) holds every
marked text of the code and templates, each translated and none fuzzy, and the committed .mo is
the compiled .po. A failure names the texts; ``make messages`` collects them (docs/i18n.md).

Then the language itself: the browser's language, the switch on the sign-in page and in the
console's user menu, a staff user's stored choice, and texts in an IM user's language.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.utils.translation import gettext_lazy as _

from apps.core.i18n import django_language, text_in

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale/zh_Hans/LC_MESSAGES/django.po"
MO = PO.with_suffix(".mo")
HINT = "run `make messages`, fill in the Chinese (msgstr) of each, and commit the .po and .mo"


def _key(entry) -> tuple[str, str]:
    return (entry.msgctxt or "", entry.msgid)


def _problems(po) -> list[str]:
    out = [f"untranslated: {e.msgid!r}" for e in po.untranslated_entries()]
    out += [f"fuzzy (a guess gettext made; check it, drop the fuzzy flag): {e.msgid!r}" for e in po.fuzzy_entries()]
    return out


def test_catalogue_translates_every_entry():
    problems = _problems(polib.pofile(str(PO)))
    assert not problems, f"{len(problems)} catalogue entries without Chinese ({HINT}):\n" + "\n".join(problems)


def test_catalogue_holds_every_marked_text(tmp_path):
    """``makemessages`` on a copy of the sources: a text marked in code or a template that the
    committed catalogue lacks comes out untranslated; an entry whose text is gone comes out missing."""
    for name in ("apps", "config", "templates", "locale"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PARLEY_VAR_DIR=str(tmp_path / "var"))
    command = [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-location", "--no-wrap"]
    command += ["--no-obsolete", "--ignore=var"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    fresh = polib.pofile(str(tmp_path / "locale/zh_Hans/LC_MESSAGES/django.po"))
    committed = {_key(e) for e in polib.pofile(str(PO)) if not e.obsolete}
    problems = _problems(fresh)
    problems += [f"no longer in the code: {msgid!r}" for _ctx, msgid in committed - {_key(e) for e in fresh}]
    assert not problems, f"the catalogue is not in step with the code ({HINT}):\n" + "\n".join(sorted(problems))


def test_compiled_catalogue_is_the_catalogue():
    po = {_key(e): (e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in polib.pofile(str(PO))
          if e.translated() and not e.obsolete}  # fmt: skip
    mo = {_key(e): (e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in polib.mofile(str(MO)) if e.msgid}
    differ = sorted(k[1] for k in po.keys() ^ mo.keys()) + sorted(k[1] for k in po.keys() & mo.keys() if po[k] != mo[k])
    assert not differ, f"django.mo is not the compiled django.po ({len(differ)} texts differ; {HINT}): {differ[:10]}"


# --- The language a person gets -----------------------------------------------------------------


def test_text_in_a_conversations_language():
    assert text_in("zh", _("Language")) == "语言"
    assert text_in("zh-CN", _("Language")) == "语言"
    assert text_in("en", _("Language")) == "Language"
    assert text_in("fr", _("Language")) == "Language"  # a language Parley has no catalogue for: English
    assert django_language("ZH-tw") == "zh-hans" and django_language("") == "en"


def test_sign_in_page_follows_the_browser_and_offers_both_languages(client, superuser):
    zh = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    page = zh.content.decode()
    assert zh.status_code == 200 and zh["Content-Language"] == "zh-hans"
    assert "语言" in page and "登录" in page
    assert 'value="en"' in page and "简体中文" in page
    en = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert en["Content-Language"] == "en" and "Log in" in en.content.decode()


def test_switch_before_signing_in_holds_for_that_browser(client, superuser):
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/login/"})
    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    assert client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en")["Content-Language"] == "zh-hans"


@pytest.mark.django_db
def test_a_staff_users_choice_follows_them_to_another_browser(client, django_user_model):
    from django.test import Client

    user = django_user_model.objects.create_superuser("lin", password="a-long-pass-phrase-1")
    client.force_login(user)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    other = Client()  # no language cookie, an English browser
    other.force_login(user)
    page = other.get("/admin/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert page["Content-Language"] == "zh-hans"
    other.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    third = Client()
    third.force_login(user)
    assert third.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN")["Content-Language"] == "en"


@pytest.mark.django_db
def test_console_user_menu_has_the_language_switch(client, django_user_model):
    user = django_user_model.objects.create_superuser("lin", password="a-long-pass-phrase-1")
    client.force_login(user)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'action="/i18n/setlang/"' in page and "简体中文" in page


@pytest.mark.django_db
def test_an_unknown_language_is_refused_without_storing(client):
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "/admin/login/"})
    assert response.status_code == 302
    assert "parley_language" not in response.cookies


def test_what_the_bot_says_in_chat_comes_in_the_users_language_from_the_catalogue():
    """Chat command replies, workflow and handoff notices: one catalogue entry each, Chinese for a
    Chinese conversation, English otherwise, with the same placeholders filled in."""
    import string

    from apps.conversations import commands
    from apps.inbox import texts as inbox_texts
    from apps.workflows import texts as workflow_texts

    for module in (commands, workflow_texts, inbox_texts):
        for key, text in module.TEXTS.items():
            english, chinese = text_in("en", text), text_in("zh-CN", text)
            assert chinese != english and re.search(r"[\u3000-\u9fff\uff00-\uffef]", chinese), (module.__name__, key)
            fields = {f for _, f, _, _ in string.Formatter().parse(str(text)) if f}
            assert fields == {f for _, f, _, _ in string.Formatter().parse(chinese) if f}, (module.__name__, key)
    assert commands.text_for("unknown", "zh", name="foo") == "我不认识命令 `/foo`。发送 `/help` 查看可用命令。"
    assert workflow_texts.text_for("done", "en", name="Refund") == "Done: **Refund**."
