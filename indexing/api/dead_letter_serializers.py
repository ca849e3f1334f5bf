import base64

from rest_framework import serializers

from indexing.core.limits import MAX_IDS_PER_REQUEST
from indexing.models import DeadLetter


class DeadLetterSerializer(serializers.ModelSerializer):
    blueprint = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    key = serializers.SerializerMethodField()
    raw_text = serializers.CharField(read_only=True)
    raw_base64 = serializers.SerializerMethodField()

    class Meta:
        model = DeadLetter
        fields = ["id", "source", "blueprint", "topic", "partition", "offset", "key", "reason", "error", "target_index",
                  "entity_id", "event_id", "version", "status", "replay_count", "attempts", "created_at",
                  "last_seen_at", "resolved_at", "resolved_by", "raw_text", "raw_base64"]
        extra_kwargs = {
            "attempts": {"help_text": "How many times the pipeline failed on this message: a replay of its offset "
                                      "after a rewind, or the relay failing on the same outbox row, adds one."},
            "last_seen_at": {"help_text": "When the last of those attempts failed."},
        }

    def get_key(self, obj) -> str | None:
        return bytes(obj.key).decode("utf-8", errors="replace") if obj.key is not None else None

    def get_raw_base64(self, obj) -> str | None:
        return base64.b64encode(bytes(obj.raw_value)).decode() if obj.raw_value is not None else None


class DeadLetterFilterSerializer(serializers.Serializer):
    blueprint = serializers.CharField(required=False)
    reason = serializers.ChoiceField(choices=DeadLetter.Reason.choices, required=False)
    source = serializers.ChoiceField(choices=DeadLetter.Source.choices, required=False,
                                     help_text="consumer: read from Kafka but not indexed; outbox: never published.")
    status = serializers.ChoiceField(choices=DeadLetter.Status.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class DeadLetterBulkActionSerializer(serializers.Serializer):
    """Either explicit ids, or ``all_matching: true`` with the list filters."""

    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False,
                                allow_empty=False, max_length=MAX_IDS_PER_REQUEST,
                                error_messages={"max_length": f"At most {MAX_IDS_PER_REQUEST} ids per request; "
                                                              "use all_matching with filters for more."})
    all_matching = serializers.BooleanField(required=False, default=False)
    filters = DeadLetterFilterSerializer(required=False)

    def validate(self, data):
        if not data.get("ids") and not data.get("all_matching"):
            raise serializers.ValidationError({"ids": "Give the ids to act on, or set all_matching to true."})
        if data.get("ids") and data.get("all_matching"):
            raise serializers.ValidationError({"all_matching": "Give either ids or all_matching, not both."})
        return data


class DeadLetterActionResultSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(required=False)
    discarded = serializers.IntegerField(required=False)
