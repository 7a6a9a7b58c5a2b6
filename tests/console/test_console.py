"""The console without a browser: the getting-started checklist ticks itself off from the database
(per tenant), the sidebar follows each role, the Test buttons on the model's and the channel's pages
make the same real calls as the bulk actions, list pages lose the one-tenant column, and answers in
the transcript are Markdown rendered safely."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.conversations.models import Conversation, Message
from apps.core.models import AuditLog
from tests.factories import PASSWORD, make_bot, make_channel, make_knowledge, make_model, make_tenant, make_user
from tests.fakes.llm import FakeOpenAI

START = "/admin/start/getting-started/"


@pytest.fixture(autouse=True)
def _setup_done(db):
    make_user("root", superuser=True)  # first-run setup is over: the admin is open


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def done_steps(client) -> dict[str, bool]:
    html = client.get(START).content.decode()
    return {k: v == "1" for k, v in re.findall(r'data-step="(\w+)" data-done="([01])"', html)}


def conversation(channel, text: str = "hello") -> Conversation:
    conv = Conversation.objects.create(
        tenant=channel.bot.tenant, bot=channel.bot, channel=channel, chat_id="c1", user_id="u1"
    )
    Message.objects.create(conversation=conv, role=Message.Role.USER, text=text)
    return conv


# --- getting started ---------------------------------------------------------------------------------
def test_steps_tick_themselves_off_as_rows_appear_and_only_for_the_users_tenants(client, settings):
    settings.PUBLIC_BASE_URL = "http://parley.example.cn:8100"
    acme, globex = make_tenant("acme"), make_tenant("globex")
    bot = make_bot(acme)
    web = make_channel(bot, platform="web", key="acme-web")
    owner = make_user("alice", tenant=acme, role="owner")
    # Everything done, but in another tenant: nothing ticks for alice, nothing of theirs is shown.
    their_bot = make_bot(globex, "sales")
    conversation(make_channel(their_bot, platform="web", key="globex-web"))
    make_channel(their_bot, platform="feishu", key="globex-feishu")
    make_knowledge(their_bot, "Hours?", "9 to 5")
    make_user("bob", tenant=globex)
    make_user("carol", tenant=globex)
    login(client, owner)

    assert done_steps(client) == {"webchat": False, "platform": False, "knowledge": False, "colleague": False}
    page = client.get(START).content.decode()
    assert 'href="http://parley.example.cn:8100/chat/acme-web/"' in page
    assert "http://parley.example.cn:8100/webhooks/feishu/&lt;channel-key&gt;/" in page
    assert "globex" not in page

    conversation(web)
    make_channel(bot, platform="wecom", key="acme-wecom")
    assert done_steps(client) == {"webchat": True, "platform": True, "knowledge": False, "colleague": False}
    assert "http://parley.example.cn:8100/webhooks/wecom/acme-wecom/" in client.get(START).content.decode()

    make_knowledge(bot, "Where are you?", "Shanghai")
    make_user("dave", tenant=acme, role="reviewer")
    assert done_steps(client) == {"webchat": True, "platform": True, "knowledge": True, "colleague": True}
    # A tenant owner cannot create accounts (Django users): the page says who can, and links no
    # page that would refuse them.
    page = client.get(START).content.decode()
    assert reverse("admin:auth_user_add") not in page and "Ask your Parley operator" in page
    assert reverse("admin:tenants_membership_add") in page


def test_admin_home_links_to_getting_started_and_shows_progress(client):
    acme = make_tenant("acme")
    make_channel(make_bot(acme), platform="web", key="acme-web")
    login(client, make_user("alice", tenant=acme, role="owner"))
    page = client.get(reverse("admin:index")).content.decode()
    assert f'href="{START}"' in page
    assert "0 of 4 first steps done" in page
    assert "Conversations at a glance" in page  # the review dashboard is the home page's body


def test_getting_started_needs_a_staff_sign_in(client):
    resp = client.get(START)
    assert resp.status_code == 302 and resp.url.startswith("/admin/login/")


# --- navigation --------------------------------------------------------------------------------------
def sidebar_links(client) -> set[str]:
    html = client.get(reverse("admin:index")).content.decode()
    nav = html.split('id="nav-sidebar-apps"', 1)[1].split("</nav>", 1)[0]
    return set(re.findall(r'href="(/admin/[^"]*)"', nav))


def test_sidebar_is_grouped_by_task_and_follows_the_role(client):
    acme = make_tenant("acme")
    login(client, make_user("rita", tenant=acme, role="reviewer"))
    reviewer = sidebar_links(client)
    assert "/admin/conversations/conversation/" in reviewer
    assert "/admin/llm/modelconfig/" not in reviewer and "/admin/bots/bot/" not in reviewer

    client.logout()
    login(client, make_user("alice", tenant=acme, role="owner"))
    owner = sidebar_links(client)
    assert {"/admin/bots/bot/", "/admin/im_channels/channel/", "/admin/llm/modelconfig/", START} <= owner
    internals = {"/admin/conversations/inboundmessage/", "/admin/conversations/message/", "/admin/auth/group/"}
    assert not internals & owner

    client.logout()
    client.login(username="root", password=PASSWORD)
    assert internals <= sidebar_links(client)
    html = client.get(reverse("admin:index")).content.decode()
    headings = [" ".join(h.split()[:4]) for h in re.findall(r"<h2[^>]*>\s*([^<]+?)\s*<", html)]
    for group in ("Bots", "Knowledge", "Channels", "Models", "Conversations and review", "Workflows",
                  "Tenants and people", "Settings"):  # fmt: skip
        assert group in headings, headings


# --- Test buttons --------------------------------------------------------------------------------------
def test_model_page_has_a_test_button_that_makes_a_real_call():
    acme = make_tenant("acme")
    with FakeOpenAI() as fake:
        cfg = make_model(acme, "good", endpoint=fake.url)
        from django.test import Client

        client = Client()
        login(client, make_user("alice", tenant=acme))
        change = client.get(reverse("admin:llm_modelconfig_change", args=[cfg.pk])).content.decode()
        url = reverse("admin:llm_modelconfig_test_this_model", args=[cfg.pk])
        assert f'href="{url}"' in change
        resp = client.get(url, follow=True)
        assert resp.redirect_chain[-1][0] == reverse("admin:llm_modelconfig_change", args=[cfg.pk])
        assert any(str(m).startswith("good: OK — answered in") for m in resp.context["messages"])
        assert fake.calls == 1
    assert AuditLog.objects.filter(action="model.test", target="good").count() == 1


def test_test_button_refuses_another_tenants_model(client):
    with FakeOpenAI() as fake:
        theirs = make_model(make_tenant("globex"), "theirs", endpoint=fake.url)
        login(client, make_user("alice", tenant=make_tenant("acme")))
        resp = client.get(reverse("admin:llm_modelconfig_test_this_model", args=[theirs.pk]))
        assert resp.status_code == 403
        assert fake.calls == 0


def test_channel_page_has_a_send_test_button_for_im_channels_only(client):
    acme = make_tenant("acme")
    bot = make_bot(acme)
    feishu = make_channel(bot, platform="feishu", key="acme-feishu")
    web = make_channel(bot, platform="web", key="acme-web")
    login(client, make_user("alice", tenant=acme))
    page = client.get(reverse("admin:im_channels_channel_change", args=[feishu.pk])).content.decode()
    button = reverse("admin:im_channels_channel_send_test_message", args=[feishu.pk])
    assert f'href="{button}"' in page
    form = client.get(button, follow=True)
    assert form.redirect_chain[-1][0] == reverse("admin:im_channels_channel_send_test", args=[feishu.pk])
    web_page = client.get(reverse("admin:im_channels_channel_change", args=[web.pk])).content.decode()
    assert "send-test" not in web_page and "test-message" not in web_page


# --- list pages and transcripts ------------------------------------------------------------------------
def test_tenant_column_only_when_the_user_sees_more_than_one_tenant(client):
    acme = make_tenant("acme")
    make_model(acme)
    login(client, make_user("alice", tenant=acme))
    headers = client.get(reverse("admin:llm_modelconfig_changelist")).content.decode()
    assert "column-tenant" not in headers
    client.logout()
    make_model(make_tenant("globex"))
    client.login(username="root", password=PASSWORD)
    assert "column-tenant" in client.get(reverse("admin:llm_modelconfig_changelist")).content.decode()


def test_transcript_renders_answers_markdown_safely(client):
    acme = make_tenant("acme")
    conv = conversation(make_channel(make_bot(acme), platform="web", key="acme-web"), text="**not bold** <b>x</b>")
    Message.objects.create(
        conversation=conv,
        role=Message.Role.ASSISTANT,
        text='We are **open**\n\n- Mon\n- Tue\n\n<img src=x onerror="alert(1)"> [bad](javascript:alert(1)) '
        "[site](https://example.com/hours)",
    )
    login(client, make_user("alice", tenant=acme))
    page = client.get(reverse("admin:conversations_conversation_change", args=[conv.pk])).content.decode()
    answer = page.split('class="text markdown"', 1)[1].split("</div>", 1)[0]
    assert "<strong>open</strong>" in answer and answer.count("<li>") == 2
    assert "&lt;img src=x" in answer and "<img" not in answer
    assert 'href="javascript' not in answer
    assert 'href="https://example.com/hours"' in answer
    # The user's words stay plain text: their Markdown is not the bot's.
    assert "**not bold** &lt;b&gt;x&lt;/b&gt;" in page


# --- Chinese ---------------------------------------------------------------------------------------------
def _texts(html: str) -> list[str]:
    html = re.sub(r"<(code|script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r'<span class="parley-name">.*?</span>', " ", html, flags=re.S)
    return [t.strip() for t in re.split(r"<[^>]+>", html) if t.strip()]


def test_getting_started_and_home_card_read_in_chinese(client, settings):
    """Parley's own console texts have Chinese (apps/console/locale): no English phrase is left in
    the getting-started page's body or the home page's card. (The admin's labels around them are in
    the project catalogue; the browser walk checks the whole page.)"""
    from html import unescape

    from .pagechecks import english_phrase

    settings.LANGUAGE_CODE = "zh-hans"
    acme = make_tenant("acme")
    make_channel(make_bot(acme), platform="web", key="acme-web", name="Web chat")
    login(client, make_user("alice", tenant=acme, role="owner"))
    page = client.get(START).content.decode()
    body = page.split('data-testid="getting-started"', 1)[1].split("</ol>\n</div>", 1)[0]
    home = client.get(reverse("admin:index")).content.decode()
    card = home.split('data-testid="start-card"', 1)[1].split("</section>", 1)[0]
    texts = [unescape(t) for t in _texts(body) + _texts(card)]
    assert "快速上手" in card and "接入一个即时通讯平台" in body
    english = {t: english_phrase(t) for t in texts if english_phrase(t)}
    assert not english, english
