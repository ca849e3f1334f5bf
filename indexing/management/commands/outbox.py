"""The outbox SQL contract of the source databases: install it, print it, show what is installed.

    manage.py outbox install [--source NAME]   # every declared source without --source
    manage.py outbox sql [--source NAME]       # the DDL, for a DBA to apply with psql
    manage.py outbox status
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from indexing.core import source_databases
from indexing.outbox import sql_contract, sql_install


class Command(BaseCommand):
    help = "Install, print or inspect the outbox SQL contract (table + searchsync_emit) of source databases."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        install = sub.add_parser("install", help="install or upgrade the contract; a no-op when it is current")
        install.add_argument("--source", help="a declared source (SEARCHSYNC_SOURCES); default: all of them")
        sql = sub.add_parser("sql", help="print the contract's DDL as one transaction")
        sql.add_argument("--source", default=source_databases.DEFAULT,
                         help="default: searchsync's own database (function only); any other: table too")
        sub.add_parser("status", help="the contract version installed in each declared source")

    def handle(self, *args, action, **options):
        return getattr(self, f"_{action}")(**options)

    def _sources(self, name):
        try:
            return [source_databases.get(name)] if name else list(source_databases.declared().values())
        except LookupError as exc:
            raise CommandError(str(exc)) from None

    def _install(self, source=None, **_):
        for src in self._sources(source):
            try:
                result = sql_install.install(src)
            except (DatabaseError, sql_install.NewerContractInstalled) as exc:
                raise CommandError(f"{src.name}: {exc}") from exc
            self.stdout.write(result.describe())

    def _sql(self, source=None, **_):
        src = self._sources(source)[0]
        self.stdout.write(f"-- searchsync outbox contract v{sql_contract.VERSION} for source {src.name!r}; "
                          f"payload limit {sql_contract.max_payload_bytes()} bytes\n")
        self.stdout.write(sql_install.contract_for(src).script())

    def _status(self, **_):
        for src in self._sources(None):
            wanted = sql_install.contract_for(src)
            try:
                got = sql_install.installed(src.alias)
            except DatabaseError as exc:
                self.stdout.write(f"{src.name:<16} {src.alias:<20} unreachable: {str(exc).strip()}")
                continue
            if got is None:
                state = "not installed"
            elif got.version == wanted.version and got.checksum == wanted.checksum:
                state = f"v{got.version}, current (installed {got.installed_at:%Y-%m-%d %H:%M:%S %Z})"
            else:
                state = f"v{got.version} installed, v{wanted.version} wanted (settings or version differ): run install"
            self.stdout.write(f"{src.name:<16} {src.alias:<20} {state}")
