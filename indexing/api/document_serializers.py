"""What the document inspector answers (``indexing/observability/inspector.py``), for the API and its schema."""

from django.urls import reverse
from rest_framework import serializers


class DatabaseSerializer(serializers.Serializer):
    exists = serializers.BooleanField(allow_null=True, help_text="null: the source could not be read (see error).")
    version = serializers.IntegerField(allow_null=True,
                                       help_text="The document's version as built from the rows now (joined rows included).")
    updated_at = serializers.DateTimeField(allow_null=True)
    tenant_id = serializers.CharField(allow_null=True)
    database = serializers.CharField(help_text="Database alias the row was read on.")
    note = serializers.CharField()
    error = serializers.CharField()


class OutboxRowSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=["waiting", "published", "dead_lettered"])
    dead_letter_id = serializers.IntegerField(allow_null=True, help_text="The relay's dead letter of this row.")


class OutboxSerializer(serializers.Serializer):
    used = serializers.BooleanField(help_text="false: the blueprint is fed by a table's change stream, not the outbox.")
    publisher = serializers.CharField()
    relays_live = serializers.IntegerField(allow_null=True, help_text="Relays with a fresh heartbeat for the source database.")
    rows = OutboxRowSerializer(many=True, help_text="The entity's latest outbox rows, newest first.")
    error = serializers.CharField()


class StreamSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField(allow_null=True)
    partitions = serializers.IntegerField(allow_null=True)
    partition_method = serializers.CharField(help_text="How the partition was found.")
    committed_offset = serializers.IntegerField(allow_null=True, help_text="The consumer group's, on that partition.")
    end_offset = serializers.IntegerField(allow_null=True)
    lag = serializers.IntegerField(allow_null=True, help_text="Messages of that partition the group has not committed.")
    consumers_live = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class IndexCopySerializer(serializers.Serializer):
    index = serializers.CharField()
    role = serializers.ChoiceField(choices=["main", "sidecar"])
    state = serializers.CharField(help_text="The physical index's state: live, building or ready.")
    read_alias = serializers.CharField()
    found = serializers.BooleanField(allow_null=True, help_text="Held by the index (real-time get); null: unreadable.")
    version = serializers.IntegerField(allow_null=True)
    deleted = serializers.BooleanField(allow_null=True, help_text="A logical tombstone.")
    searchable = serializers.BooleanField(allow_null=True,
                                          help_text="Found now by a search through the read alias at the version the "
                                                    "index holds; false for a tombstone; null: not behind the alias.")
    searched_version = serializers.IntegerField(allow_null=True,
                                                help_text="The version a search sees (searches see the last refresh).")
    error = serializers.CharField()


class LetterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    reason = serializers.CharField()
    status = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    target_index = serializers.CharField()
    created_at = serializers.DateTimeField()
    error = serializers.CharField()
    url = serializers.SerializerMethodField(help_text="The dead letter in the API.")
    console_url = serializers.SerializerMethodField(help_text="The dead letter's console page.")

    def get_url(self, obj) -> str:
        return self._absolute(reverse("dead-letter-detail", args=[obj.id]))

    def get_console_url(self, obj) -> str:
        return self._absolute(reverse("dashboard:dead_letter", args=[obj.id]))

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class AuditSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    target = serializers.CharField()
    outcome = serializers.CharField()


class DocumentInspectionSerializer(serializers.Serializer):
    blueprint = serializers.CharField(source="blueprint.name")
    id = serializers.CharField(source="entity_id")
    state = serializers.CharField(help_text="in_sync, deleted, awaiting_refresh, waiting_in_outbox, dead_lettered, "
                                            "in_kafka, no_consumer, missing, stale, tombstone_ahead, orphaned or unknown.")
    verdict = serializers.CharField(help_text="One line: what is wrong, or that all agree.")
    database = DatabaseSerializer()
    outbox = OutboxSerializer()
    stream = StreamSerializer()
    index = IndexCopySerializer(many=True, help_text="Every write target: live index, its sidecar, indices being built.")
    dead_letters = LetterSerializer(many=True)
    audit = AuditSerializer(many=True)


class ReindexResultSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=["upsert", "delete"])
    version = serializers.IntegerField()
    via = serializers.ChoiceField(choices=["outbox", "document writer"])
    event_id = serializers.CharField()
