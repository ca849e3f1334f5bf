"""Installing the outbox SQL contract into a source database, idempotently and versioned.

One transaction per install (PostgreSQL's DDL is transactional): a failed install leaves the
database as it was. An advisory lock makes two installs at once (two deploys) run one after the
other; the second then finds the same version and checksum and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections, transaction

from indexing.core.source_databases import DEFAULT, SourceDatabase
from indexing.outbox.sql_contract import COMPONENT, UPGRADE_STEPS, VERSION, Contract, contract

LOCK = "SELECT pg_advisory_xact_lock(hashtext('searchsync_schema'))"


class NewerContractInstalled(RuntimeError):
    """The database holds a contract from a newer searchsync: never downgrade it."""


@dataclass(frozen=True)
class Installed:
    version: int
    checksum: str
    installed_at: object


@dataclass(frozen=True)
class InstallResult:
    source: str
    before: Installed | None
    version: int
    changed: bool

    def describe(self) -> str:
        if not self.changed:
            return f"{self.source}: outbox contract v{self.version} already installed, nothing to do"
        if self.before is None:
            return f"{self.source}: outbox contract v{self.version} installed"
        if self.before.version != self.version:
            return f"{self.source}: outbox contract upgraded from v{self.before.version} to v{self.version}"
        return f"{self.source}: outbox contract v{self.version} re-installed (its settings changed)"


def contract_for(source: SourceDatabase, max_payload: int | None = None) -> Contract:
    # searchsync's own database has the table from Django's migrations: only the function goes there.
    return contract(with_table=source.name != DEFAULT, max_payload=max_payload)


def installed(alias: str) -> Installed | None:
    """The contract recorded in a database, or None when it was never installed."""
    with connections[alias].cursor() as cur:
        cur.execute("SELECT to_regclass('searchsync_schema') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT version, checksum, installed_at FROM searchsync_schema WHERE component = %s", [COMPONENT])
        row = cur.fetchone()
    return Installed(*row) if row else None


def install(source: SourceDatabase, alias: str | None = None, max_payload: int | None = None) -> InstallResult:
    """Install or upgrade the contract in a source database; a no-op when it is already there."""
    alias = alias or source.alias
    wanted = contract_for(source, max_payload)
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cur:
            cur.execute(LOCK)
        before = installed(alias)
        if before is not None and before.version > VERSION:
            raise NewerContractInstalled(
                f"{source.name}: outbox contract v{before.version} is installed, newer than this "
                f"searchsync's v{VERSION}; upgrade searchsync instead")
        if before is not None and before.version == VERSION and before.checksum == wanted.checksum:
            return InstallResult(source.name, before, VERSION, changed=False)
        with connections[alias].cursor() as cur:
            if before is not None:
                for version in range(before.version + 1, VERSION + 1):
                    for statement in UPGRADE_STEPS.get(version, []):
                        cur.execute(statement)
            for statement in wanted.statements:
                cur.execute(statement)
            cur.execute(wanted.record())
    return InstallResult(source.name, before, VERSION, changed=True)
