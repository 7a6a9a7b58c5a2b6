"""The getting-started checklist: what a new tenant does in its first hour, read from the database.

Every item's "done" is derived from rows that exist (a web-chat conversation, an IM channel, a
knowledge entry, a colleague's membership), never stored by hand, so the list ticks itself off as
the admin works and is the same for everyone looking at the same tenants. Scoped like the admin:
the tenants the user manages, every tenant for a superuser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.bots.models import KnowledgeEntry
from apps.channels.models import Channel
from apps.conversations.models import Conversation
from apps.tenants.models import Membership
from apps.tenants.selectors import MANAGE_ROLES, tenant_ids_for

#: Stands for the channel key the admin picks, in URLs of channels not created yet.
KEY_PLACEHOLDER = "<channel-key>"

#: The platform console steps, shortest path to a working channel (docs/platforms.md has the rest).
PLATFORM_STEPS: dict[str, list[Any]] = {
    Channel.Platform.FEISHU: [
        _("Feishu / Lark developer console → your custom app → Events and callbacks."),
        _("Event configuration: send events to the developer server; Request URL = the URL below."),
        _(
            "Subscribe to im.message.receive_v1; copy App ID, App Secret, Verification Token and Encrypt Key "
            "into the channel."
        ),
        _("Or choose Long connection mode: then no URL is needed."),
    ],
    Channel.Platform.WECOM: [
        _("WeCom admin console → App management → your self-built app → Receive messages → Set API."),
        _("URL = the URL below; put the Token and EncodingAESKey generated there into the channel."),
        _("Add the server's egress IP to the app's trusted IPs."),
    ],
    Channel.Platform.DINGTALK: [
        _("DingTalk developer console → your internal app → Robot."),
        _("Message receiving mode HTTP; receiving address = the URL below. Publish the robot."),
        _("Copy AppKey and AppSecret into the channel (or use Long connection: Stream mode, no URL)."),
    ],
    Channel.Platform.QQ: [
        _("QQ bot platform → your bot → Development settings → Callback configuration."),
        _("Callback URL = the URL below; subscribe to C2C and group @-message events."),
        _("Copy AppID and AppSecret into the channel; add the server's egress IP to the IP whitelist."),
    ],
    Channel.Platform.SLACK: [
        _("Slack app settings → Event Subscriptions: Request URL = the URL below."),
        _("Subscribe to the bot events app_mention and message.im; install the app."),
        _("Copy the Bot User OAuth Token and the Signing Secret into the channel (or use Socket Mode)."),
    ],
    Channel.Platform.TELEGRAM: [
        _("Create a bot with @BotFather and copy its token into the channel with a secret token you choose."),
        _("Register the URL below as the bot's webhook (setWebhook with the same secret token)."),
    ],
}


@dataclass
class PlatformGuide:
    platform: str
    label: str
    webhook_url: str
    steps: list[Any]
    add_url: str
    channels: list[Channel] = field(default_factory=list)


@dataclass
class Step:
    key: str
    title: Any
    done: bool
    summary: Any
    links: list[tuple[Any, str]] = field(default_factory=list)


@dataclass
class Checklist:
    steps: list[Step]
    webchat_urls: list[tuple[str, str]]
    platforms: list[PlatformGuide]

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.done)

    @property
    def complete(self) -> bool:
        return all(s.done for s in self.steps)


def _scoped(qs: Any, path: str, ids: set[int] | None) -> Any:
    return qs if ids is None else qs.filter(**{f"{path}__in": ids})


def checklist_for(*, user: Any) -> Checklist:
    """The four first-hour steps for the tenants ``user`` manages, each ticked off from the database."""
    ids = tenant_ids_for(user, roles=MANAGE_ROLES)
    channels = _scoped(Channel.objects.select_related("bot"), "bot__tenant", ids).order_by("id")
    web = [c for c in channels if c.platform == Channel.Platform.WEB and c.enabled]
    im = [c for c in channels if c.platform != Channel.Platform.WEB]
    add_channel = reverse("admin:im_channels_channel_add")

    platforms = []
    for value, label in Channel.Platform.choices:
        if value == Channel.Platform.WEB:
            continue
        # The same helper the channel page uses, on an unsaved channel: one rule for public URLs.
        sample = Channel(platform=value, key=KEY_PLACEHOLDER).webhook_url
        platforms.append(
            PlatformGuide(
                platform=value,
                label=label,
                webhook_url=sample,
                steps=PLATFORM_STEPS.get(value, []),
                add_url=f"{add_channel}?platform={value}",
                channels=[c for c in im if c.platform == value],
            )
        )

    chatted = _scoped(Conversation.objects, "tenant", ids).filter(channel__platform=Channel.Platform.WEB).exists()
    has_knowledge = _scoped(KnowledgeEntry.objects, "bot__tenant", ids).exists()
    colleagues = _scoped(Membership.objects, "tenant", ids).exclude(user=user).exists()
    # Accounts are Django users: only people with that permission (superusers) create them.
    may_add_accounts = user.has_perm("auth.add_user")

    steps = [
        Step(
            key="webchat",
            title=_("Open your web chat and ask a question"),
            done=chatted,
            summary=_("Done when the first web-chat conversation arrives."),
            links=[(c.name or c.key, c.webhook_url) for c in web],
        ),
        Step(
            key="platform",
            title=_("Connect an IM platform"),
            done=bool(im),
            summary=_("Done when a Feishu, WeCom, DingTalk, QQ, Slack or Telegram channel exists."),
            links=[(_("Add a channel"), add_channel)],
        ),
        Step(
            key="knowledge",
            title=_("Add knowledge"),
            done=has_knowledge,
            summary=_("Questions that match a knowledge entry are answered from it, without a model call."),
            links=[(_("Add a knowledge entry"), reverse("admin:bots_knowledgeentry_add"))],
        ),
        Step(
            key="colleague",
            title=_("Invite a colleague"),
            done=colleagues,
            summary=_("Give a colleague an account, then a membership (owner, admin or reviewer) in your tenant.")
            if may_add_accounts
            else _("Ask your Parley operator for your colleague's account, then give it a membership in your tenant."),
            links=[
                *([(_("Add an account"), reverse("admin:auth_user_add"))] if may_add_accounts else []),
                (_("Add a membership"), reverse("admin:tenants_membership_add")),
            ],
        ),
    ]
    return Checklist(steps=steps, webchat_urls=[(c.name or c.key, c.webhook_url) for c in web], platforms=platforms)
