"""Apply (or remove) the Debezium connectors this installation needs on Kafka Connect.

With SEARCHSYNC_PUBLISHER=debezium: the outbox event router. For every enabled
blueprint with event_format=debezium_table: a table CDC connector whose topic
the blueprint consumes. Safe to run again at every start: standalone Connect
keeps offsets in a file but not REST-created connectors.
"""

from django.core.management.base import BaseCommand

from indexing.control import connectors
from indexing.models import EventFormat, IndexBlueprint
from indexing.conf import searchsync_settings


class Command(BaseCommand):
    help = "Create or update the Debezium connectors (outbox router, table CDC) through Kafka Connect's REST API."

    def add_arguments(self, parser):
        parser.add_argument("--remove", action="store_true", help="Delete the connectors and drop their slots.")

    def handle(self, *, remove, **options):
        prefix = searchsync_settings.SLOT_PREFIX
        wanted = {}
        if searchsync_settings.PUBLISHER == "debezium":
            wanted[f"{prefix}-outbox"] = connectors.outbox_connector_config(f"{prefix}_outbox")
        for blueprint in IndexBlueprint.objects.filter(enabled=True, event_format=EventFormat.DEBEZIUM_TABLE):
            topic_prefix = blueprint.topic.rsplit(".public.", 1)[0]
            slot = f"{prefix}_{blueprint.name}".replace("-", "_")
            wanted[f"{prefix}-table-{blueprint.name}"] = connectors.table_connector_config(slot, topic_prefix)
        for name, config in wanted.items():
            if remove:
                connectors.delete(name)
                connectors.drop_slot(config["slot.name"])
                self.stdout.write(f"removed {name} and slot {config['slot.name']}")
            else:
                connectors.apply(name, config)
                self.stdout.write(f"applied {name} (slot {config['slot.name']})")
        if not wanted:
            self.stdout.write("nothing to do: the relay publishes the outbox and no blueprint consumes table changes")
