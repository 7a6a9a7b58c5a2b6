"""First-run setup: the one-time token, whether setup is still needed, and doing it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction

from apps.bots.models import Bot
from apps.channels.models import Channel
from apps.core.audit import audit_record
from apps.core.cache import soft_get, soft_set
from apps.llm.models import ModelConfig
from apps.tenants.models import Membership, Tenant

_CACHE_KEY = "parley:setup_done"


def setup_token() -> str:
    """The token /setup/ asks for. Derived from SECRET_KEY, so every process agrees on it and only
    someone who can read the console (or run ``manage.py setup_token``) knows it."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"parley-first-run-setup", hashlib.sha256).hexdigest()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def check_setup_token(candidate: str) -> bool:
    return hmac.compare_digest(candidate.strip().lower().encode(), setup_token().encode())


def setup_needed() -> bool:
    """True while no superuser exists. Cached once setup is done (it never becomes needed again);
    with the cache unreachable the database answers alone, so the admin keeps working."""
    if soft_get(_CACHE_KEY):
        return False
    done = get_user_model().objects.filter(is_superuser=True).exists()
    if done:
        soft_set(_CACHE_KEY, True, 300)
    return not done


def _starter_answers(bot: Bot, *, tenant_name: str) -> None:
    """The built-in model answers only from knowledge entries: a bot set up with it starts with a
    greeting and an answer to "what can you do", each in English and Chinese (a visitor gets the one
    in their language), so its first answers are answers. They are ordinary entries, to edit or
    delete in the admin."""
    name = bot.name
    entries = [
        (
            "Hello",
            "hi, hey, hello there, good morning, good afternoon, good evening",
            f"Hello! I'm {name}, the assistant of {tenant_name}. Ask me a question, or send /help to see "
            "what I can do.",
        ),
        (
            "你好",
            "您好, 嗨, 在吗, 在么, 哈喽, 早上好, 下午好, 晚上好",
            f"你好！我是 {name}，{tenant_name} 的助手。请直接提问，或发送 /help 查看我能做什么。",
        ),
        (
            "What can you do?",
            "what can you do, what do you do, how can you help",
            "I answer the questions my team has prepared answers for. Ask in your own words; when I don't "
            "know the answer yet, I say so. Send /help for the commands.",
        ),
        (
            "你能做什么？",
            "你能做什么, 你会什么, 你能帮我什么, 能帮我做什么",
            "我可以回答团队为我准备好答案的问题。请用自己的话提问；如果我还不知道答案，会直接告诉你。"
            "发送 /help 查看命令。",
        ),
    ]
    for question, keywords, answer in entries:
        bot.knowledge.create(question=question, keywords=keywords, answer=answer)


@transaction.atomic
def setup_complete(*, data: dict[str, Any]) -> Any:
    """Create the admin account, the first tenant, a model config, a bot and a web-chat channel
    from validated setup form data. Returns the new superuser."""
    User = get_user_model()
    # Lock against a second submission racing this one: only the first creates a superuser.
    if User.objects.select_for_update().filter(is_superuser=True).exists():
        raise PermissionError("Parley is already set up.")
    user = User.objects.create_superuser(data["username"], data.get("email") or "", data["password1"])
    tenant = Tenant.objects.create(slug=data["tenant_slug"], name=data["tenant_name"])
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    provider = data["provider"]
    model = ModelConfig.objects.create(
        tenant=tenant,
        name="primary" if provider != "builtin" else "builtin",
        provider=provider,
        endpoint=data.get("endpoint") or "",
        api_key=data.get("api_key") or "",
        model=data.get("model_name") or "",
    )
    bot = Bot.objects.create(
        tenant=tenant,
        slug="assistant",
        name=data["bot_name"],
        model=model,
        system_prompt=f"You are {data['bot_name']}, the assistant of {data['tenant_name']}. "
        "Answer briefly and in the language the user writes in.",
    )
    if provider == "builtin":
        _starter_answers(bot, tenant_name=data["tenant_name"])
    Channel.objects.create(bot=bot, platform=Channel.Platform.WEB, key=data["channel_key"], name="Web chat")
    audit_record(action="setup.completed", actor=user, tenant=tenant, target=tenant.slug, provider=provider)
    cache.delete(_CACHE_KEY)
    return user
