"""Who writes catalog data: operators and admins (permission ``catalog.write_products``).

The platform's roles (``indexing.permissions.ensure_roles``) know nothing of the demo
application, so the catalog adds its own permission to those groups.
"""

WRITE_PRODUCTS = "catalog.write_products"
WRITER_GROUPS = ("operators", "admins")


def grant_product_writes(groups=WRITER_GROUPS) -> None:
    from django.contrib.auth.models import Group, Permission

    permission = Permission.objects.get(codename="write_products", content_type__app_label="catalog")
    for name in groups:
        Group.objects.get_or_create(name=name)[0].permissions.add(permission)
