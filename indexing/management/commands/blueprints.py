"""Blueprint revisions from the command line.

    manage.py blueprints list
    manage.py blueprints diff [name]
    manage.py blueprints propose [name] --reason "why" [--by who]
    manage.py blueprints propose name --from DIR [--reason "why"]
    manage.py blueprints enable|disable name

A blueprint's definition lives as files next to the code of the app that owns the
data; ``diff`` compares them with the serving revision, ``propose`` validates them
against the search engine (scratch index) and records a new immutable revision.
Serving it is a cutover (console: Blueprints → Rebuild with this revision).

``--from DIR`` takes a blueprint declared in files over a table or view, with no Python:
``blueprint.json``, ``mapping.json`` and an optional ``event.schema.json`` (README: *Any table,
any language*). The first proposal creates the blueprint, disabled; ``enable`` creates its
index, aliases and topic, and running ``--cdc`` workers start consuming it.
"""

from django.core.management.base import BaseCommand, CommandError

from indexing.blueprints.relations import DeclarationError
from indexing.control import declared, revisions
from indexing.models import IndexBlueprint
from indexing.control.registry import get_registration


class Command(BaseCommand):
    help = "List, diff and propose blueprint revisions."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Revisions of every blueprint.")
        diff = sub.add_parser("diff", help="How the files differ from the serving revision.")
        diff.add_argument("name", nargs="?")
        propose = sub.add_parser("propose", help="Validate the files and record them as a new revision.")
        propose.add_argument("name", nargs="?")
        propose.add_argument("--reason", help="Why (required, except for a declared blueprint's first revision).")
        propose.add_argument("--from", dest="directory", help="A folder declaring the blueprint over a table or view.")
        propose.add_argument("--by", default="", help="Who proposes it (default: the OS user).")
        for action in ("enable", "disable"):
            sub.add_parser(action, help=f"{action.capitalize()} a blueprint (its consumers, canaries, "
                                        "reconciliation and overview card).").add_argument("name")

    def handle(self, *, action, **options):
        return getattr(self, f"do_{action}")(**options)

    def _blueprints(self, name):
        queryset = IndexBlueprint.objects.exclude(registered_as="")
        if name:
            queryset = queryset.filter(name=name)
            if not queryset.exists():
                raise CommandError(f"no registered blueprint named {name!r}")
        return list(queryset)

    def do_list(self, **options):
        for blueprint in IndexBlueprint.objects.all():
            serving = blueprint.serving_revision
            for revision in blueprint.revisions.all():
                mark = "serving" if serving and revision.pk == serving.pk else ""
                self.stdout.write(f"{blueprint.name} r{revision.number} {revision.short_hash} {mark:8} "
                                  f"{revision.created_at:%Y-%m-%d %H:%M} {revision.created_by}: {revision.reason}")

    def do_enable(self, *, name, **options):
        self._set_enabled(name, True)

    def do_disable(self, *, name, **options):
        self._set_enabled(name, False)

    def _set_enabled(self, name, enabled):
        blueprint = IndexBlueprint.objects.filter(name=name).first()
        if blueprint is None:
            raise CommandError(f"no blueprint named {name!r}")
        if enabled:
            declared.enable(blueprint)
            self.stdout.write(f"{name}: enabled; index {blueprint.live_index().name}, aliases {blueprint.read_alias} "
                              f"and {blueprint.write_alias}, topic {blueprint.topic}")
        else:
            IndexBlueprint.objects.filter(pk=blueprint.pk).update(enabled=False)
            self.stdout.write(f"{name}: disabled")

    def do_diff(self, *, name=None, **options):
        for blueprint in self._blueprints(name):
            files = get_registration(blueprint.registered_as).definition()
            base = revisions.serving_or_latest(blueprint)
            lines = revisions.diff(base.definition if base else None, files,
                                   f"{blueprint.name} r{base.number}" if base else "(none)", f"{blueprint.name} files")
            self.stdout.write("\n".join(lines) if lines else f"{blueprint.name}: files equal the serving revision")

    def do_propose(self, *, name=None, reason, by, directory=None, **options):
        if directory:
            return self._propose_declared(name, directory, reason, by)
        if not reason:
            raise CommandError("--reason is required")
        for blueprint in self._blueprints(name):
            files = get_registration(blueprint.registered_as).definition()
            try:
                revision = revisions.propose(blueprint, files, by=by or None, reason=reason)
            except revisions.NothingToPropose as exc:
                self.stdout.write(str(exc))
                continue
            except revisions.RevisionRejected as exc:
                raise CommandError(f"{blueprint.name}: revision rejected ({exc.cause}): {exc}") from exc
            self.stdout.write(f"{blueprint.name}: recorded revision {revision.number} ({revision.short_hash}) by "
                              f"{revision.created_by}, validated with {revision.validation.get('documents', 0)} "
                              f"sample documents; serve it with a cutover")

    def _propose_declared(self, name, directory, reason, by):
        if not name:
            raise CommandError("propose --from needs the blueprint's name")
        first = not IndexBlueprint.objects.filter(name=name).exists()
        try:
            blueprint, revision = declared.propose(name, directory, by=by or None,
                                                   reason=reason or ("declared in files" if first else ""))
        except DeclarationError as exc:
            raise CommandError(f"{name}: {exc}") from exc
        except revisions.NothingToPropose as exc:
            self.stdout.write(str(exc))
            return
        except revisions.RevisionRejected as exc:
            raise CommandError(f"{name}: revision rejected ({exc.cause}): {exc}") from exc
        except ValueError as exc:  # a later revision without a reason
            raise CommandError(f"{name}: {exc}") from exc
        then = (f"enable it with: manage.py blueprints enable {name}" if not blueprint.enabled
                else "serve it with a cutover")
        self.stdout.write(f"{name}: recorded revision {revision.number} ({revision.short_hash}) from {directory}, "
                          f"validated with {revision.validation.get('documents', 0)} sample rows; {then}")
