"""A publication limited to the outbox, for Debezium's outbox event router (pgoutput)."""

from django.db import migrations

CREATE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'searchsync_outbox') THEN
    CREATE PUBLICATION searchsync_outbox FOR TABLE transactional_outbox;
  END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("indexing", "0005_blueprint_event_format")]

    operations = [migrations.RunSQL(CREATE, "DROP PUBLICATION IF EXISTS searchsync_outbox")]
