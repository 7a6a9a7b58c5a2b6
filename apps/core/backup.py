"""Consistent backups of Parley's database together with the keys its secrets are encrypted with.

A backup is one ``.tar.gz`` (mode 600) holding:

* ``manifest.json``: format, time, database vendor, the applied migrations, every table's row count,
  fingerprints of the encryption keys;
* the database: ``database.pgdump`` (``pg_dump --format=custom``: one snapshot, so consistent while
  Parley keeps running) or ``database.sqlite3`` (SQLite's online backup API: also one snapshot);
* ``keys.env``: ``SECRET_KEY`` and ``PARLEY_ENCRYPTION_KEYS`` — without them the stored platform
  credentials, model API keys and workflow secrets cannot be read back (``--without-keys`` leaves
  them out, for operators who keep the env file backed up elsewhere).

Restoring replaces every table of the configured database with the archive's, then checks that each
table has the rows the manifest counted and that every encrypted value decrypts with the configured
keys. It refuses up front when those keys are not the archive's (``extract_keys`` writes them to a
file to put into the env file). See docs/deploy-upgrades.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from . import crypto
from .fields import EncryptedJSONField, EncryptedTextField

FORMAT = 1
MANIFEST = "manifest.json"
KEYS = "keys.env"
DUMPS = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and what to do."""


@dataclass
class RestoreReport:
    tables: int = 0
    rows: int = 0
    secrets: int = 0
    unreadable: list[str] = field(default_factory=list)


def _effective_keys() -> list[str]:
    """The Fernet keys secrets are read with: PARLEY_ENCRYPTION_KEYS, or the one derived from SECRET_KEY."""
    keys = list(settings.PARLEY_ENCRYPTION_KEYS)
    return keys or [crypto.derive_key(settings.SECRET_KEY).decode()]


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _connection(alias: str = DEFAULT_DB_ALIAS):
    conn = connections[alias]
    if conn.vendor not in DUMPS:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {conn.vendor}")
    return conn


def _table_counts(conn) -> dict[str, int]:
    with conn.cursor() as cursor:
        tables = sorted(conn.introspection.table_names(cursor))
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM {conn.ops.quote_name(table)}")  # noqa: S608 - introspected names
            counts[table] = cursor.fetchone()[0]
    return counts


def _applied_migrations(conn) -> dict[str, str]:
    from django.db.migrations.recorder import MigrationRecorder

    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(conn).applied_migrations():
        if name > latest.get(app, ""):
            latest[app] = name
    return dict(sorted(latest.items()))


def _pg_env(conn) -> dict[str, str]:
    params = conn.settings_dict
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if params.get(key):
            env[var] = str(params[key])
    return env


def _run(argv: list[str], env: dict[str, str]) -> None:
    if shutil.which(argv[0]) is None:
        raise BackupError(f"{argv[0]} is not installed (Debian/Ubuntu: apt install postgresql-client)")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {done.stderr.strip()[-800:]}")


def _dump_database(conn, target: Path) -> None:
    if conn.vendor == "postgresql":
        name = conn.settings_dict["NAME"]
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-acl", f"--file={target}", name], _pg_env(conn))
        return
    conn.ensure_connection()
    destination = sqlite3.connect(target)
    try:
        conn.connection.backup(destination)
    finally:
        destination.close()


def create_backup(output: Path, *, include_keys: bool = True, alias: str = DEFAULT_DB_ALIAS) -> dict:
    """Write the archive to ``output`` (mode 600, written in place only when complete); its manifest."""
    conn = _connection(alias)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    keys = _effective_keys()
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        dump = Path(tmp) / DUMPS[conn.vendor]
        _dump_database(conn, dump)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "vendor": conn.vendor,
            "database": DUMPS[conn.vendor],
            "migrations": _applied_migrations(conn),
            "tables": _table_counts(conn),
            "key_fingerprints": [fingerprint(k) for k in keys],
            "keys_included": include_keys,
        }
        partial = Path(tmp) / "backup.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(dump, arcname=dump.name)
            if include_keys:
                lines = [
                    "# Parley backup: the keys this database's secrets are encrypted with.",
                    f"SECRET_KEY={settings.SECRET_KEY}",
                    f"PARLEY_ENCRYPTION_KEYS={','.join(keys)}",
                ]
                _add_bytes(tar, KEYS, ("\n".join(lines) + "\n").encode())
        os.replace(partial, output)
    os.chmod(output, 0o600)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:gz")
    except FileNotFoundError as exc:
        raise BackupError(f"no such backup: {path}") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path} is not a Parley backup (not a readable .tar.gz)") from exc


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        handle = tar.extractfile(name)
    except KeyError:
        handle = None
    if handle is None:
        raise BackupError(f"the backup has no {name}; it is incomplete or not a Parley backup")
    return handle.read()


def read_manifest(path: Path) -> dict:
    with _open(Path(path)) as tar:
        try:
            manifest = json.loads(_member(tar, MANIFEST))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackupError("the backup's manifest is not JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r} (this Parley reads {FORMAT})")
    return manifest


def extract_keys(path: Path, output: Path) -> None:
    """The archive's keys.env to ``output`` (mode 600), to put into the env file before restoring."""
    with _open(Path(path)) as tar:
        data = _member(tar, KEYS)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _restore_database(conn, dump: Path) -> None:
    if conn.vendor == "postgresql":
        conn.close()  # no session of ours may hold a lock on the tables being replaced
        name = conn.settings_dict["NAME"]
        argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction"]
        _run([*argv, f"--dbname={name}", str(dump)], _pg_env(conn))
        return
    conn.ensure_connection()
    if conn.in_atomic_block:
        raise BackupError("restore cannot run inside a transaction")
    source = sqlite3.connect(dump)
    try:
        source.backup(conn.connection)  # replaces the whole database, page by page
    finally:
        source.close()


def _check_secrets(report: RestoreReport) -> None:
    for model in apps.get_models():
        encrypted = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField | EncryptedJSONField)]
        for f in encrypted:
            rows = model._base_manager.exclude(**{f.name: ""}).values_list("pk", flat=True)
            for pk in rows.iterator():
                report.secrets += 1
                try:
                    model._base_manager.filter(pk=pk).values_list(f.name, flat=True).get()
                except crypto.SecretDecryptionError:
                    report.unreadable.append(f"{model._meta.label}.{f.name} #{pk}")


def restore_backup(path: Path, *, ignore_keys: bool = False, alias: str = DEFAULT_DB_ALIAS) -> RestoreReport:
    conn = _connection(alias)
    path = Path(path)
    manifest = read_manifest(path)
    if manifest["vendor"] != conn.vendor:
        raise BackupError(f"this backup is of a {manifest['vendor']} database; the configured one is {conn.vendor}")
    configured = {fingerprint(k) for k in _effective_keys()}
    missing = [f for f in manifest["key_fingerprints"] if f not in configured]
    if missing and not ignore_keys:
        raise BackupError(
            "the backup's encryption keys are not among the configured ones, so its stored secrets would be "
            "unreadable. Put its keys in the env file first: manage.py restore BACKUP --extract-keys FILE "
            "writes them (SECRET_KEY and PARLEY_ENCRYPTION_KEYS) to FILE; then restart and restore again."
        )
    with _open(path) as tar, tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / manifest["database"]
        dump.write_bytes(_member(tar, manifest["database"]))
        _restore_database(conn, dump)
    report = RestoreReport()
    counts = _table_counts(conn)
    for table, expected in manifest["tables"].items():
        if counts.get(table) != expected:
            raise BackupError(f"after the restore table {table} has {counts.get(table)} rows, the backup {expected}")
        report.tables += 1
        report.rows += expected
    _check_secrets(report)
    return report
