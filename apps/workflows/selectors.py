"""Which workflows a message starts: a bot's enabled workflows, remembered per process.

Every message of every bot asks "does this start a workflow?", and almost always the answer is no;
so a bot's enabled workflows (its own and the tenant-wide ones) are read once per
``workflow_cache_seconds()`` per process instead of once per message. Saving or deleting a workflow
in this process forgets them at once (signals below, outside the message path); other processes
see the change within the cache time.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core.commands import parse_command
from apps.core.ttlcache import TTLCache

from .models import Workflow
from .validation import normalize_keyword, trigger_key


def workflow_cache_seconds() -> float:
    """``PARLEY_WORKFLOW_CACHE_SECONDS`` (default 5; 0 reads the workflows for every message)."""
    return max(0.0, settings.PARLEY_WORKFLOW_CACHE_SECONDS)


@dataclass(frozen=True)
class ActiveWorkflow:
    id: int
    name: str
    trigger: str
    key: str  # the normalized command word or keyword
    confirmation_required: bool
    bot_specific: bool
    description: str = ""  # tools: what the model is told it does
    parameters: dict | None = None  # tools: the JSON Schema of its arguments

    @property
    def is_tool(self) -> bool:
        return self.trigger == Workflow.Trigger.TOOL


@dataclass(frozen=True)
class Match:
    workflow: ActiveWorkflow
    text: str  # the command's argument, or the whole message for a keyword


def _load_workflows(bot) -> tuple[ActiveWorkflow, ...]:
    rows = (
        Workflow.objects.filter(enabled=True, tenant_id=bot.tenant_id)
        .filter(Q(bot_id=bot.pk) | Q(bot__isnull=True))
        .values_list(
            "id", "name", "trigger", "trigger_value", "confirmation_required", "bot_id", "description", "parameters"
        )
    )
    return tuple(
        ActiveWorkflow(
            id=pk,
            name=name,
            trigger=trigger,
            key=trigger_key(trigger, value),
            confirmation_required=confirm,
            bot_specific=bot_id is not None,
            description=description if trigger == Workflow.Trigger.TOOL else "",
            parameters=(parameters or None) if trigger == Workflow.Trigger.TOOL else None,
        )
        for pk, name, trigger, value, confirm, bot_id, description, parameters in rows
    )


def tool_workflows(bot) -> tuple[ActiveWorkflow, ...]:
    """The enabled workflows ``bot``'s models may call as tools (a bot's own wins over a tenant-wide
    one of the same name)."""
    found: dict[str, ActiveWorkflow] = {}
    for f in sorted((f for f in active_workflows(bot) if f.is_tool), key=lambda f: (not f.bot_specific, f.name)):
        found.setdefault(f.key, f)
    return tuple(found.values())


#: A bot's enabled workflows by bot id.
_cache: TTLCache[int, tuple[ActiveWorkflow, ...]] = TTLCache(workflow_cache_seconds)


def active_workflows(bot) -> tuple[ActiveWorkflow, ...]:
    """The enabled workflows that apply to ``bot`` (its own and its tenant's bot-less ones)."""
    return _cache.get(bot.pk, lambda: _load_workflows(bot))


def forget_workflows() -> None:
    _cache.clear()


@receiver(post_save, sender=Workflow)
@receiver(post_delete, sender=Workflow)
def _workflow_changed(**kwargs) -> None:
    forget_workflows()


def match_trigger(flows: tuple[ActiveWorkflow, ...], text: str) -> Match | None:
    """The workflow ``text`` starts, or None. A command trigger matches ``/<word> [text]`` (built-in
    commands are never workflows); a keyword trigger matches an ordinary message containing it.
    A bot's own workflow wins over a tenant-wide one, a longer keyword over a shorter one."""
    if not flows:
        return None
    cmd = parse_command(text)
    if cmd is not None:
        if cmd.name != "unknown":
            return None
        word = cmd.raw_name.lower()
        found = [f for f in flows if f.trigger == Workflow.Trigger.COMMAND and f.key == word]
        if not found:
            return None
        found.sort(key=lambda f: (not f.bot_specific, f.name))
        return Match(found[0], cmd.arg)
    lowered = normalize_keyword(text)
    found = [f for f in flows if f.trigger == Workflow.Trigger.KEYWORD and f.key and f.key in lowered]
    if not found:
        return None
    found.sort(key=lambda f: (not f.bot_specific, -len(f.key), f.name))
    return Match(found[0], (text or "").strip())
