"""Make a fresh installation usable: every registered blueprint with its first
revision, live index and topic, the operator/admin groups, and (with --demo-users) logins."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from indexing.blueprints import ensure_live_index
from indexing.permissions import ensure_roles
from indexing.registry import ensure_blueprint, registrations
from indexing.topics import ensure_topic

DEMO_USERS = [
    # username, password, group, superuser
    ("admin", "admin", "admins", True),
    ("admin2", "admin2", "admins", True),
    ("operator", "operator", "operators", False),
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
            User = get_user_model()
            for username, password, group, superuser in DEMO_USERS:
                user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": superuser})
                if created:
                    user.set_password(password)
                    user.save()
                user.groups.add(Group.objects.get(name=group))
            self.stdout.write("demo users: admin/admin, admin2/admin2 (admins), operator/operator")
