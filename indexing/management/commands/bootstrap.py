"""Make a fresh installation usable: every registered blueprint with its first
revision, live index and topic, the operator/admin groups, and (with --demo-users) logins.

Demo logins are for a local development stack only: their passwords are set
directly (admin/admin would fail the password validators) and none of them is a
Django superuser, so one console admin cannot read another's credentials or act
as them; each admin's rights come from the ``admins`` group alone."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from indexing.blueprints.indices import ensure_live_index
from indexing.permissions import ensure_roles
from indexing.control.registry import ensure_blueprint, registrations
from indexing.core.topics import ensure_topic

DEMO_USERS = [
    # username, password (dev only), group
    ("admin", "admin", "admins"),
    ("admin2", "admin2", "admins"),
    ("operator", "operator", "operators"),
]


class Command(BaseCommand):
    help = "Create the registered blueprints, their live indices, aliases and topics, and the console roles."

    def add_arguments(self, parser):
        parser.add_argument("--demo-users", action="store_true", help="Create admin/admin, admin2/admin2, operator/operator.")

    def handle(self, *, demo_users, **options):
        for registration in registrations():
            # An existing blueprint is left alone: its definition changes by `manage.py blueprints propose`.
            blueprint = ensure_blueprint(registration.name, validate=True)
            if not blueprint.enabled:
                self.stdout.write(f"blueprint {blueprint.name}: disabled")
                continue
            live = ensure_live_index(blueprint)
            ensure_topic(blueprint.topic)
            self.stdout.write(f"blueprint {blueprint.name} r{blueprint.revision}: live index {live.name} behind "
                              f"{blueprint.read_alias}, topic {blueprint.topic}")
        ensure_roles()
        if demo_users:
            create_demo_users()
            self.stdout.write("demo users (development only): admin/admin, admin2/admin2 (admins), operator/operator")


def create_demo_users() -> None:
    User = get_user_model()
    for username, password, group in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)  # bypasses the validators on purpose: these are dev-only logins
        # Staff may open the Django admin, which shows them only what their group allows; never
        # superusers (also for installations bootstrapped before this rule).
        user.is_staff, user.is_superuser = True, False
        user.save()
        user.groups.add(Group.objects.get(name=group))
