"""Direct table CDC of products: a publication limited to the table, and full row images
so a delete event still carries the tenant and every column."""

from django.db import migrations

CREATE = """
ALTER TABLE catalog_product REPLICA IDENTITY FULL;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'searchsync_tables') THEN
    CREATE PUBLICATION searchsync_tables FOR TABLE catalog_product;
  END IF;
END $$;
"""
DROP = "DROP PUBLICATION IF EXISTS searchsync_tables; ALTER TABLE catalog_product REPLICA IDENTITY DEFAULT;"


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
