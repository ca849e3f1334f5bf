"""Apply (or remove) the Debezium connectors this installation needs on Kafka Connect.

Per source database: with SEARCHSYNC_PUBLISHER=debezium, the outbox event router wherever the
outbox is; for every enabled blueprint fed by table changes (model-backed, or declared with
``"feed": "table_changes"``), a table connector on its source database, whose topic the blueprint
consumes. Safe to run again at every start: standalone Connect keeps offsets in a file but not
REST-created connectors.
"""

from django.core.management.base import BaseCommand

from indexing.control import connectors


class Command(BaseCommand):
    help = "Create or update the Debezium connectors (outbox router, table CDC) through Kafka Connect's REST API."

    def add_arguments(self, parser):
        parser.add_argument("--remove", action="store_true", help="Delete the connectors and drop their slots.")

    def handle(self, *, remove, **options):
        wanted = connectors.wanted_connectors()
        for item in wanted:
            if remove:
                connectors.remove_wanted(item)
                self.stdout.write(f"removed {item.name} and slot {item.slot} from source database {item.source}")
            else:
                connectors.apply_wanted(item)
                self.stdout.write(f"applied {item.name} (slot {item.slot} in source database {item.source}, "
                                  f"table {item.table})")
        if not wanted:
            self.stdout.write("nothing to do: the relay publishes the outbox and no blueprint consumes table changes")
