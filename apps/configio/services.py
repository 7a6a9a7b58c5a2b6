"""Config as code: ``manage.py apply -f parley.yaml`` and ``manage.py export``.

The file describes tenants with their model configs, knowledge bases (documents: paths relative to
the file, or URLs), bots (knowledge entries, knowledge bases, channels, tool servers), workflows and
tool servers. Applying
is idempotent (a second run changes nothing) and all-or-nothing (an invalid file changes nothing;
every error names the file, the path inside it and the problem). ``${VAR}`` in a string value is
read from the environment (``$$`` writes a literal ``$``). Export writes the same format with
secrets (API keys, channel credentials, workflow signing secrets, tool-server headers) left out;
applying a file without
them keeps the saved ones.

What apply owns: the tenants, models, bots, channels, workflows and tool servers it names are created
or updated; a bot's knowledge entries, fallback list, knowledge bases and tool servers are made to
match the file. A knowledge base's
documents named in the file are added, or replaced when the file's bytes changed (then indexed
again; unchanged ones are not); documents added in the admin are left alone. Nothing else is ever
deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from apps.bots.models import Bot, BotFallback, KnowledgeEntry
from apps.channels.connectors import long_connection_problems
from apps.channels.models import Channel
from apps.channels.platforms.registry import platforms
from apps.channels.services import validate_credentials
from apps.knowledge import services as knowledge
from apps.knowledge.models import Document, KnowledgeBase
from apps.llm.models import ModelConfig
from apps.tenants.models import Tenant, validate_timezone
from apps.workflows.models import BotToolServer, ToolServer, Workflow
from apps.workflows.validation import tool_server_errors, workflow_errors

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
KEY = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ModelSpecIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    purpose: Literal["chat", "embedding"] = "chat"
    provider: Literal["openai", "anthropic", "builtin"] = "openai"
    endpoint: str = ""
    api_key: str | None = None  # None: keep what is saved
    model: str = ""
    max_tokens: int = Field(2048, ge=1, le=200_000)
    temperature: Decimal = Field(Decimal("0.7"), ge=0, le=2)
    tier: Literal["light", "general", "expert"] = "general"
    timeout_s: Decimal = Field(Decimal("3"), ge=Decimal("0.1"), le=300)
    cost_input_per_1k: Decimal = Field(Decimal("0"), ge=0)
    cost_output_per_1k: Decimal = Field(Decimal("0"), ge=0)
    supports_tools: bool = True
    enabled: bool = True


class KnowledgeIn(_Strict):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    keywords: str = ""
    enabled: bool = True


class ChannelIn(_Strict):
    key: str = Field(pattern=KEY)
    platform: Literal[tuple(platforms())]  # the platform registry's names
    name: str = ""
    mode: Literal["webhook", "long_connection"] = "webhook"
    api_base: str | None = None
    credentials: dict[str, str] | None = None  # None: keep what is saved
    allowed_origins: list[str] = []
    enabled: bool = True
    streaming: bool = True


class BotToolServerIn(_Strict):
    name: str = Field(min_length=1, max_length=100)  # a tool server of the tenant
    tools: list[str] = []  # empty: every tool the server lists


class ToolServerIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=500)
    headers: dict[str, str] | None = None  # secret; None: keep what is saved
    timeout_s: int = Field(15, ge=1, le=60)
    enabled: bool = True


class BotIn(_Strict):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    system_prompt: str = ""
    greeting: str = ""
    help_text: str = ""
    failure_text: str = ""
    model: str | None = None
    fallback_models: list[str] = []
    language_routes: dict[str, str] = {}
    context_max_tokens: int = Field(3000, ge=100)
    context_max_turns: int = Field(20, ge=1, le=200)
    idle_timeout_minutes: int = Field(30, ge=0)
    merge_mode: Literal["burst", "window"] = "burst"
    merge_window_ms: int = Field(1500, ge=0, le=60_000)
    rate_limit_per_second: int = Field(100, ge=0)
    user_rate_limit_per_minute: int = Field(20, ge=0)
    cache_answers: bool = False
    cache_ttl_seconds: int = Field(3600, ge=0)
    pii_policy: Literal["mask", "allow"] = "mask"
    feedback_links: bool = True
    retention_days: int = Field(180, ge=0)
    retrieval_threshold: float = Field(0.3, ge=0, le=1)
    knowledge_fallback: Literal["unknown", "general"] = "unknown"
    knowledge: list[KnowledgeIn] = []
    knowledge_bases: list[str] = []
    channels: list[ChannelIn] = []
    tool_servers: list[BotToolServerIn] = []  # the tools it may use on its tenant's tool servers


class WorkflowIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    bot: str | None = None  # a bot slug of the tenant; None: every bot of the tenant
    trigger: Literal["command", "keyword", "tool"] = "command"
    trigger_value: str = Field(min_length=1, max_length=200)  # a tool: its name
    description: str = ""  # a tool: what it does, for the model
    parameters: dict[str, Any] = {}  # a tool: the JSON Schema object of its arguments
    url: str = Field(min_length=1, max_length=500)
    payload_template: str = ""
    reply_template: str = ""
    signing_secret: str | None = None  # None: keep what is saved
    confirmation_required: bool = True
    max_retries: int = Field(3, ge=0, le=10)
    timeout_s: int = Field(10, ge=1, le=60)
    enabled: bool = True


class KnowledgeBaseIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    embedding_model: str | None = None  # a model of the tenant with purpose: embedding
    documents: list[str] = []  # paths relative to the file, or http(s) URLs


class TenantIn(_Strict):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    is_active: bool = True
    timezone: str = ""  # e.g. Asia/Shanghai; empty: the server's TIME_ZONE
    models: list[ModelSpecIn] = []
    knowledge_bases: list[KnowledgeBaseIn] = []
    bots: list[BotIn] = []
    workflows: list[WorkflowIn] = []
    tool_servers: list[ToolServerIn] = []  # Model Context Protocol servers (docs/tools.md)


class ConfigIn(_Strict):
    tenants: list[TenantIn] = []
    # Where relative document paths start: the file's folder (standard input: the working folder).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def document_path(self, ref: str) -> Path:
        return (self._base_dir / ref).resolve()


def is_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


class ConfigError(Exception):
    """The file is invalid. ``errors`` are lines ``<file>: <path>: <problem>``; nothing was changed."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def summary(self) -> str:
        if not self.changed:
            return "No changes."
        return f"{len(self.created)} created, {len(self.updated)} updated, {len(self.deleted)} deleted."


# --- reading -------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _substitute(value: Any, loc: tuple, errors: list[str], env: dict[str, str]) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1)
            if name not in env:
                errors.append(f"{_path(loc)}: environment variable {name} is not set")
                return ""
            return env[name]

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), errors, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), errors, env) for i, v in enumerate(value)]
    return value


def load_config(
    text: str, *, filename: str = "<config>", env: dict[str, str] | None = None, base_dir: Path | None = None
) -> ConfigIn:
    """Parse and validate a config file. Raises ``ConfigError`` listing every problem. ``base_dir``:
    where the documents' relative paths start (the file's folder; the working folder by default)."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        raise ConfigError([f"{filename}: {where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{filename}: (top level): expected a mapping with a 'tenants' list"])
    errors: list[str] = []
    data = _substitute(data, (), errors, dict(os.environ) if env is None else env)
    if errors:
        raise ConfigError([f"{filename}: {e}" for e in errors])
    try:
        config = ConfigIn.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{filename}: {_path(e['loc'])}: {e['msg']}" for e in exc.errors()]) from exc
    if base_dir is not None:
        config._base_dir = Path(base_dir)
    _check_references(config, filename)
    return config


def _check_references(config: ConfigIn, filename: str) -> None:
    errors: list[str] = []
    seen_tenants: set[str] = set()
    seen_keys: dict[str, str] = {}
    for ti, tenant in enumerate(config.tenants):
        tp = f"tenants[{ti}]"
        if tenant.slug in seen_tenants:
            errors.append(f"{tp}.slug: tenant '{tenant.slug}' appears twice")
        seen_tenants.add(tenant.slug)
        try:
            validate_timezone(tenant.timezone)
        except DjangoValidationError as exc:
            errors.append(f"{tp}.timezone: {' '.join(exc.messages)}")
        names = [m.name for m in tenant.models]
        for mi, name in enumerate(names):
            if names.index(name) != mi:
                errors.append(f"{tp}.models[{mi}].name: model '{name}' appears twice")
        existing = set(ModelConfig.objects.filter(tenant__slug=tenant.slug).values_list("name", flat=True))
        known = set(names) | existing
        errors.extend(_check_knowledge_bases(config, tenant, tp))
        kb_names = {kb.name for kb in tenant.knowledge_bases} | set(
            KnowledgeBase.objects.filter(tenant__slug=tenant.slug).values_list("name", flat=True)
        )
        bot_slugs: set[str] = set()
        for bi, bot in enumerate(tenant.bots):
            bp = f"{tp}.bots[{bi}]"
            if bot.slug in bot_slugs:
                errors.append(f"{bp}.slug: bot '{bot.slug}' appears twice in this tenant")
            bot_slugs.add(bot.slug)
            if bot.model and bot.model not in known:
                errors.append(f"{bp}.model: no model named '{bot.model}' in tenant '{tenant.slug}'")
            for fi, name in enumerate(bot.fallback_models):
                if name not in known:
                    errors.append(f"{bp}.fallback_models[{fi}]: no model named '{name}' in tenant '{tenant.slug}'")
            for lang, name in bot.language_routes.items():
                if name not in known:
                    errors.append(f"{bp}.language_routes.{lang}: no model named '{name}' in tenant '{tenant.slug}'")
            for ki, name in enumerate(bot.knowledge_bases):
                if name not in kb_names:
                    errors.append(f"{bp}.knowledge_bases[{ki}]: no knowledge base '{name}' in tenant '{tenant.slug}'")
            for ci, ch in enumerate(bot.channels):
                cp = f"{bp}.channels[{ci}]"
                if ch.key in seen_keys:
                    errors.append(f"{cp}.key: channel key '{ch.key}' is also used at {seen_keys[ch.key]}")
                seen_keys[ch.key] = cp
                owner = Channel.objects.filter(key=ch.key).select_related("bot__tenant").first()
                if owner and (owner.bot.tenant.slug, owner.bot.slug) != (tenant.slug, bot.slug):
                    errors.append(
                        f"{cp}.key: channel key '{ch.key}' belongs to another bot "
                        f"({owner.bot.tenant.slug}/{owner.bot.slug})"
                    )
                if ch.mode == Channel.Mode.LONG_CONNECTION:  # the admin form's rules (docs/connectors.md)
                    problems = long_connection_problems(ch.platform, ch.credentials or {}, enabled=ch.enabled)
                    for field, found in problems.items():
                        if field == "mode" or ch.credentials is not None:
                            errors.extend(f"{cp}.{field}: {problem}" for problem in found)
                elif ch.credentials is not None:
                    for problem in validate_credentials(ch.platform, ch.credentials, enabled=ch.enabled):
                        errors.append(f"{cp}.credentials: {problem}")
        errors.extend(_check_workflows(tenant, tp, bot_slugs))
        errors.extend(_check_tool_servers(tenant, tp))
    if errors:
        raise ConfigError([f"{filename}: {e}" for e in errors])


def _check_knowledge_bases(config: ConfigIn, tenant: TenantIn, tp: str) -> list[str]:
    """Names unique, the embedding model an embedding model of the tenant, each document a readable
    file of a supported type and size (relative to the config file) or an http(s) URL."""
    errors: list[str] = []
    file_models = {m.name: m.purpose for m in tenant.models}
    saved_models = dict(ModelConfig.objects.filter(tenant__slug=tenant.slug).values_list("name", "purpose"))
    names: set[str] = set()
    for ki, kb in enumerate(tenant.knowledge_bases):
        kp = f"{tp}.knowledge_bases[{ki}]"
        if kb.name in names:
            errors.append(f"{kp}.name: knowledge base '{kb.name}' appears twice in this tenant")
        names.add(kb.name)
        if kb.embedding_model:
            purpose = file_models.get(kb.embedding_model, saved_models.get(kb.embedding_model))
            if purpose is None:
                errors.append(f"{kp}.embedding_model: no model named '{kb.embedding_model}' in tenant '{tenant.slug}'")
            elif purpose != ModelConfig.Purpose.EMBEDDING:
                errors.append(f"{kp}.embedding_model: '{kb.embedding_model}' is not an embedding model (purpose)")
        seen: set[str] = set()
        for di, ref in enumerate(kb.documents):
            dp = f"{kp}.documents[{di}]"
            if ref in seen:
                errors.append(f"{dp}: '{ref}' appears twice")
            seen.add(ref)
            if is_url(ref):
                continue
            path = config.document_path(ref)
            if not path.is_file():
                errors.append(f"{dp}: no such file {ref} (paths are relative to the config file)")
                continue
            try:
                knowledge.check_upload(ref, path.stat().st_size)
            except knowledge.DocumentRejected as exc:
                errors.append(f"{dp}: {exc}")
    return errors


def _check_workflows(tenant: TenantIn, tp: str, bot_slugs: set[str]) -> list[str]:
    """Bot references, duplicate names, and what the admin would refuse (a valid payload template,
    an http(s) URL, a command that is one word and not built in)."""

    errors: list[str] = []
    existing_bots = set(Bot.objects.filter(tenant__slug=tenant.slug).values_list("slug", flat=True))
    names: set[str] = set()
    for wi, wf in enumerate(tenant.workflows):
        wp = f"{tp}.workflows[{wi}]"
        if wf.name in names:
            errors.append(f"{wp}.name: workflow '{wf.name}' appears twice in this tenant")
        names.add(wf.name)
        if wf.bot and wf.bot not in bot_slugs | existing_bots:
            errors.append(f"{wp}.bot: no bot '{wf.bot}' in tenant '{tenant.slug}'")
        # The checks that need no other rows (the rest run when the workflow is saved).
        probe = Workflow(**wf.model_dump(exclude={"bot", "signing_secret"}))
        for name, problems in workflow_errors(probe).items():
            errors.extend(f"{wp}.{name}: {problem}" for problem in problems)
    return errors


def _check_tool_servers(tenant: TenantIn, tp: str) -> list[str]:
    """Names unique, URL / headers / timeout as the admin checks them, bots naming servers that exist."""
    errors: list[str] = []
    names: set[str] = set()
    for si, server in enumerate(tenant.tool_servers):
        sp = f"{tp}.tool_servers[{si}]"
        if server.name in names:
            errors.append(f"{sp}.name: tool server '{server.name}' appears twice in this tenant")
        names.add(server.name)
        probe = ToolServer(
            name=server.name, url=server.url, headers=json.dumps(server.headers or {}), timeout_s=server.timeout_s
        )
        for name, problems in tool_server_errors(probe).items():
            errors.extend(f"{sp}.{name}: {problem}" for problem in problems)
    known = names | set(ToolServer.objects.filter(tenant__slug=tenant.slug).values_list("name", flat=True))
    for bi, bot in enumerate(tenant.bots):
        for ci, choice in enumerate(bot.tool_servers):
            if choice.name not in known:
                errors.append(f"{tp}.bots[{bi}].tool_servers[{ci}].name: no tool server '{choice.name}' in tenant")
    return errors


# --- applying ------------------------------------------------------------------------------------


def _sync(obj: Any, values: dict[str, Any], label: str, report: ApplyReport) -> Any:
    """Set ``values`` on ``obj`` and save only when something differs."""
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    if obj.pk is None:
        for k, v in values.items():
            setattr(obj, k, v)
        obj.full_clean()
        obj.save()
        report.created.append(label)
    elif changed:
        for k in changed:
            setattr(obj, k, values[k])
        obj.full_clean()
        obj.save()
        report.updated.append(f"{label} ({', '.join(changed)})")
    return obj


def _sync_knowledge_bases(
    config: ConfigIn, tenant: Tenant, wanted: list[KnowledgeBaseIn], models: dict[str, ModelConfig], report: ApplyReport
) -> None:
    """Create or update the knowledge bases the file names and the documents it lists in them: a
    file whose bytes are unchanged, or a URL already there, is left as it is (not indexed again)."""
    for k in wanted:
        kb = KnowledgeBase.objects.filter(tenant=tenant, name=k.name).first() or KnowledgeBase(
            tenant=tenant, name=k.name
        )
        embedding = models[k.embedding_model] if k.embedding_model else None
        model_changed = kb.pk is not None and kb.embedding_model_id != (embedding.pk if embedding else None)
        kb = _sync(
            kb,
            {"description": k.description, "embedding_model": embedding},
            f"knowledge base {tenant.slug}/{k.name}",
            report,
        )
        if model_changed:
            knowledge.reindex_knowledge_base(kb)
        label = f"document {tenant.slug}/{k.name}"
        for ref in k.documents:
            if is_url(ref):
                if not kb.documents.filter(kind=Document.Kind.URL, url=ref).exists():
                    knowledge.add_url(kb, url=ref)
                    report.created.append(f"{label}: {ref}")
                continue
            data = config.document_path(ref).read_bytes()
            doc = kb.documents.filter(kind=Document.Kind.FILE, filename=ref[:300]).first()
            if doc is None:
                knowledge.add_file(kb, filename=ref, data=data)
                report.created.append(f"{label}: {ref}")
            elif doc.content_hash != hashlib.sha256(data).hexdigest():
                doc.data = data
                doc.content_hash = doc.compute_hash()
                doc.save(update_fields=["data", "content_hash", "updated_at"])
                knowledge.schedule_index(doc)
                report.updated.append(f"{label}: {ref} (changed)")


def _sync_bot_knowledge_bases(bot: Bot, names: list[str], report: ApplyReport) -> None:
    wanted = set(KnowledgeBase.objects.filter(tenant=bot.tenant, name__in=names).values_list("pk", flat=True))
    current = set(bot.knowledge_bases.values_list("pk", flat=True))
    if wanted != current:
        bot.knowledge_bases.set(wanted)
        report.updated.append(f"bot {bot.tenant.slug}/{bot.slug} (knowledge_bases)")


@transaction.atomic
def apply_config(config: ConfigIn, *, dry_run: bool = False) -> ApplyReport:
    """Create or update everything ``config`` names. Atomic; with ``dry_run`` nothing is kept."""
    report = ApplyReport()
    for t in config.tenants:
        tenant = Tenant.objects.filter(slug=t.slug).first() or Tenant(slug=t.slug)
        _sync(tenant, {"name": t.name, "is_active": t.is_active, "timezone": t.timezone}, f"tenant {t.slug}", report)
        models: dict[str, ModelConfig] = {m.name: m for m in ModelConfig.objects.filter(tenant=tenant)}
        for m in t.models:
            obj = models.get(m.name) or ModelConfig(tenant=tenant, name=m.name)
            values = m.model_dump(exclude={"name", "api_key"})
            if m.api_key is not None:
                values["api_key"] = m.api_key
            models[m.name] = _sync(obj, values, f"model {t.slug}/{m.name}", report)
        _sync_knowledge_bases(config, tenant, t.knowledge_bases, models, report)
        servers = _sync_tool_servers(tenant, t.tool_servers, report)
        for b in t.bots:
            bot = Bot.objects.filter(tenant=tenant, slug=b.slug).first() or Bot(tenant=tenant, slug=b.slug)
            values = b.model_dump(
                exclude={"slug", "model", "fallback_models", "knowledge", "knowledge_bases", "channels", "tool_servers"}
            )
            values["model"] = models[b.model] if b.model else None
            bot = _sync(bot, values, f"bot {t.slug}/{b.slug}", report)
            _sync_fallbacks(bot, [models[n] for n in b.fallback_models], report)
            _sync_knowledge(bot, b.knowledge, report)
            _sync_bot_knowledge_bases(bot, b.knowledge_bases, report)
            _sync_bot_tool_servers(bot, b.tool_servers, servers, report)
            for c in b.channels:
                ch = Channel.objects.filter(key=c.key).first() or Channel(key=c.key, bot=bot)
                cvalues = c.model_dump(exclude={"key", "credentials", "allowed_origins", "api_base"})
                cvalues["bot"] = bot
                cvalues["api_base"] = c.api_base or ""
                cvalues["allowed_origins"] = "\n".join(c.allowed_origins)
                if c.credentials is not None:
                    cvalues["credentials"] = c.credentials
                _sync(ch, cvalues, f"channel {c.key}", report)
        _sync_workflows(tenant, t.workflows, report)
    if dry_run:
        transaction.set_rollback(True)
    return report


def _sync_tool_servers(tenant: Tenant, servers: list[ToolServerIn], report: ApplyReport) -> dict[str, ToolServer]:
    """Create or update the tool servers the file names (by name); the headers kept when left out."""
    existing = {s.name: s for s in ToolServer.objects.filter(tenant=tenant)}
    for srv in servers:
        obj = existing.get(srv.name) or ToolServer(tenant=tenant, name=srv.name)
        values = srv.model_dump(exclude={"name", "headers"})
        if srv.headers is not None:
            wanted = json.dumps(srv.headers, ensure_ascii=False, sort_keys=True)
            if obj.pk is None or obj.header_dict() != srv.headers:
                values["headers"] = wanted
        existing[srv.name] = _sync(obj, values, f"tool server {tenant.slug}/{srv.name}", report)
    return existing


def _sync_bot_tool_servers(
    bot: Bot, choices: list[BotToolServerIn], servers: dict[str, ToolServer], report: ApplyReport
) -> None:
    """The bot's tool servers become exactly the ones the file lists (with their tools)."""
    wanted = {servers[c.name].pk: list(c.tools) for c in choices}
    current = {link.server_id: link.tools for link in BotToolServer.objects.filter(bot=bot)}
    if wanted == current:
        return
    BotToolServer.objects.filter(bot=bot).exclude(server_id__in=wanted).delete()
    for server_id, tools in wanted.items():
        BotToolServer.objects.update_or_create(bot=bot, server_id=server_id, defaults={"tools": tools})
    report.updated.append(f"bot {bot.tenant.slug}/{bot.slug} (tool_servers)")


def _sync_workflows(tenant: Tenant, workflows: list[WorkflowIn], report: ApplyReport) -> None:
    """Create or update the tenant's workflows the file names (by name); others are left alone."""
    existing = {w.name: w for w in Workflow.objects.filter(tenant=tenant)}
    bots = {b.slug: b for b in Bot.objects.filter(tenant=tenant)}
    for w in workflows:
        obj = existing.get(w.name) or Workflow(tenant=tenant, name=w.name)
        values = w.model_dump(exclude={"name", "bot", "signing_secret"})
        values["bot"] = bots[w.bot] if w.bot else None
        if w.signing_secret is not None:
            values["signing_secret"] = w.signing_secret
        _sync(obj, values, f"workflow {tenant.slug}/{w.name}", report)


def _sync_fallbacks(bot: Bot, wanted: list[ModelConfig], report: ApplyReport) -> None:
    current = list(bot.fallbacks.order_by("position", "id").values_list("model_id", "position"))
    target = [(m.pk, i) for i, m in enumerate(wanted)]
    if current == target:
        return
    bot.fallbacks.all().delete()
    BotFallback.objects.bulk_create([BotFallback(bot=bot, model=m, position=i) for i, m in enumerate(wanted)])
    report.updated.append(f"bot {bot.tenant.slug}/{bot.slug} (fallback_models)")


def _sync_knowledge(bot: Bot, entries: list[KnowledgeIn], report: ApplyReport) -> None:
    existing = {e.question: e for e in bot.knowledge.all()}
    wanted = {e.question for e in entries}
    for e in entries:
        obj = existing.get(e.question) or KnowledgeEntry(bot=bot, question=e.question)
        _sync(
            obj,
            {"answer": e.answer, "keywords": e.keywords, "enabled": e.enabled},
            f"knowledge {bot.tenant.slug}/{bot.slug}: {e.question[:40]}",
            report,
        )
    for question, obj in existing.items():
        if question not in wanted:
            obj.delete()
            report.deleted.append(f"knowledge {bot.tenant.slug}/{bot.slug}: {question[:40]}")


# --- exporting -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def export_config(*, tenant_slugs: list[str] | None = None) -> dict[str, Any]:
    """The configuration as a dict in the apply format, secrets left out."""
    tenants = Tenant.objects.order_by("slug")
    if tenant_slugs:
        tenants = tenants.filter(slug__in=tenant_slugs)
    out = []
    for tenant in tenants:
        models = []
        for m in tenant.models.order_by("name"):
            models.append(
                {
                    k: _plain(v)
                    for k, v in {
                        "name": m.name,
                        "purpose": m.purpose,
                        "provider": m.provider,
                        "endpoint": m.endpoint,
                        "model": m.model,
                        "max_tokens": m.max_tokens,
                        "temperature": m.temperature,
                        "tier": m.tier,
                        "timeout_s": m.timeout_s,
                        "cost_input_per_1k": m.cost_input_per_1k,
                        "cost_output_per_1k": m.cost_output_per_1k,
                        "supports_tools": m.supports_tools,
                        "enabled": m.enabled,
                    }.items()
                }
            )
        bots = []
        for b in tenant.bots.order_by("slug").select_related("model"):
            data = {
                f: getattr(b, f)
                for f in BotIn.model_fields
                if f
                not in {"slug", "model", "fallback_models", "knowledge", "knowledge_bases", "channels", "tool_servers"}
            }
            bots.append(
                {
                    "slug": b.slug,
                    **data,
                    "model": b.model.name if b.model else None,
                    "fallback_models": [m.name for m in b.fallback_configs()],
                    "knowledge_bases": sorted(b.knowledge_bases.values_list("name", flat=True)),
                    "tool_servers": [
                        {"name": link.server.name, "tools": list(link.tools or [])}
                        for link in BotToolServer.objects.filter(bot=b)
                        .select_related("server")
                        .order_by("server__name")
                    ],
                    "knowledge": [
                        {"question": e.question, "answer": e.answer, "keywords": e.keywords, "enabled": e.enabled}
                        for e in b.knowledge.order_by("id")
                    ],
                    "channels": [
                        {
                            "key": c.key,
                            "platform": c.platform,
                            "name": c.name,
                            "mode": c.mode,
                            "api_base": c.api_base or None,
                            "allowed_origins": c.origin_list(),
                            "enabled": c.enabled,
                            "streaming": c.streaming,
                        }
                        for c in b.channels.order_by("key")
                    ],
                }
            )
        workflows = [
            {
                "name": w.name,
                "bot": w.bot.slug if w.bot else None,
                **{f: getattr(w, f) for f in WorkflowIn.model_fields if f not in {"name", "bot", "signing_secret"}},
            }
            for w in tenant.workflows.order_by("name").select_related("bot")
        ]
        out.append(
            {
                "slug": tenant.slug,
                "name": tenant.name,
                "is_active": tenant.is_active,
                "timezone": tenant.timezone,
                "models": models,
                "knowledge_bases": [
                    {
                        "name": kb.name,
                        "description": kb.description,
                        "embedding_model": kb.embedding_model.name if kb.embedding_model else None,
                        "documents": [
                            d.url if d.kind == Document.Kind.URL else d.filename
                            for d in kb.documents.exclude(kind=Document.Kind.TEXT).order_by("id")
                        ],
                    }
                    for kb in tenant.knowledge_bases.order_by("name").select_related("embedding_model")
                ],
                "bots": bots,
                "workflows": workflows,
                "tool_servers": [
                    {"name": srv.name, "url": srv.url, "timeout_s": srv.timeout_s, "enabled": srv.enabled}
                    for srv in tenant.tool_servers.order_by("name")
                ],
            }
        )
    return {"tenants": out}


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)
