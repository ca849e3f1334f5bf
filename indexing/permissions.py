"""Who may do what.

- anyone logged in: look at every page and read the API;
- operators (permission ``operate_pipeline``): replay and discard dead letters,
  run and steer backfills and reconciliations;
- admins (permission ``approve_cutover``): request, approve, swap and roll back
  cutovers — approval additionally needs someone other than the requester.
Anonymous users see the login page only (LoginRequiredMiddleware).
"""

from django.contrib.auth.decorators import permission_required
from django.dispatch import Signal
from rest_framework.permissions import SAFE_METHODS, BasePermission

OPERATE = "indexing.operate_pipeline"
MANAGE_CUTOVERS = "backfills.approve_cutover"

# For console views that change something: a 403 page that says which permission is missing.
operator_required = permission_required(OPERATE, raise_exception=True)
cutover_admin_required = permission_required(MANAGE_CUTOVERS, raise_exception=True)


# Sent once the roles exist, so a source application can grant its own permissions to them
# (the platform knows nothing of its models).
roles_ensured = Signal()


def ensure_roles() -> None:
    """The two console roles as groups with their permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    operate = Permission.objects.get(codename="operate_pipeline")
    approve = Permission.objects.get(codename="approve_cutover")
    operators, _ = Group.objects.get_or_create(name="operators")
    admins, _ = Group.objects.get_or_create(name="admins")
    view_audit = Permission.objects.get(codename="view_auditevent", content_type__app_label="audit")
    operators.permissions.add(operate, view_audit)
    # Only admins approve cutovers; a second admin approves what the first requested.
    admins.permissions.add(operate, approve, view_audit)
    roles_ensured.send(sender=ensure_roles, operators=operators, admins=admins)


class ChangesNeed(BasePermission):
    """Read for everyone authenticated; unsafe methods need the view's ``change_permission``."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        needed = getattr(view, "change_permission", None)
        if needed and not request.user.has_perm(needed):
            self.message = f"This needs the {needed.split('.')[-1]} permission."
            return False
        return True
