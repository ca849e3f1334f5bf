"""Every UPDATE of a product, brand or category takes a new change stamp, whoever writes it.

The services stamp their writes themselves, after the locks that order them (``catalog.stamps``);
a writer that does not (``QuerySet.update()``, the Django admin, SQL) gets one from this trigger,
taken while the row is locked. A blueprint fed by the table's change events uses the stamp as its
version, so an update that kept its old stamp would be refused as stale and lost from its index.
"""

from django.db import migrations

import catalog.models

SEQUENCE = catalog.models.CHANGE_SEQUENCE
TABLES = ("catalog_product", "catalog_brand", "catalog_category")

CREATE = f"""
CREATE OR REPLACE FUNCTION catalog_stamp_update() RETURNS trigger AS $$
BEGIN
  IF NEW.change_stamp IS NOT DISTINCT FROM OLD.change_stamp THEN
    NEW.change_stamp := nextval('{SEQUENCE}');
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
""" + "".join(f"""
CREATE TRIGGER {table}_stamp BEFORE UPDATE ON {table}
  FOR EACH ROW EXECUTE FUNCTION catalog_stamp_update();
""" for table in TABLES)

DROP = "".join(f"DROP TRIGGER IF EXISTS {table}_stamp ON {table};" for table in TABLES) + \
    "DROP FUNCTION IF EXISTS catalog_stamp_update();"


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_categories_brand_links_and_change_stamps")]

    operations = [migrations.RunSQL(CREATE, DROP)]
