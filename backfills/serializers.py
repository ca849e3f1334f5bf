from rest_framework import serializers

from indexing.core.limits import MAX_ROWS_PER_SECOND
from indexing.models import IndexBlueprint, PhysicalIndex

from . import selection as selections
from .models import Backfill, Cutover, CutoverStep
from .services import progress


LISTED_IDS = 20


class SelectionField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("selection must be an object, e.g. {\"kind\": \"all\"}")
        try:
            return selections.validate(data)
        except selections.InvalidSelection as exc:
            raise serializers.ValidationError(str(exc)) from None


class BackfillSerializer(serializers.ModelSerializer):
    blueprint = serializers.SlugRelatedField(slug_field="name", queryset=IndexBlueprint.objects.all())
    target_index = serializers.SlugRelatedField(slug_field="name", queryset=PhysicalIndex.objects.all(), required=False,
                                                help_text="A physical index of the blueprint; default: its live index.")
    selection = SelectionField(required=False, default=dict)
    rows_per_second = serializers.IntegerField(min_value=1, max_value=MAX_ROWS_PER_SECOND, required=False, allow_null=True)
    chunk_size = serializers.IntegerField(min_value=100, max_value=1_000_000, required=False, default=5000)
    parallelism = serializers.IntegerField(min_value=1, max_value=32, required=False, default=2)
    progress = serializers.SerializerMethodField()
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                                help_text="Null when the user was deleted.")

    class Meta:
        model = Backfill
        fields = ["id", "blueprint", "target_index", "purpose", "selection", "rows_per_second", "chunk_size",
                  "parallelism", "status", "rows_total", "progress", "requested_by", "created_at", "started_at",
                  "finished_at", "error"]
        read_only_fields = ["id", "purpose", "status", "rows_total", "created_at", "started_at", "finished_at", "error"]

    def validate(self, data):
        target = data.get("target_index")
        if target is not None and target.blueprint_id != data["blueprint"].pk:
            raise serializers.ValidationError({"target_index": "this index belongs to another blueprint"})
        if target is not None and target.state == PhysicalIndex.State.RETIRED:
            raise serializers.ValidationError({"target_index": "a retired index cannot be backfilled"})
        if target is None and data["blueprint"].live_index() is None:
            raise serializers.ValidationError({"blueprint": "this blueprint has no live index yet"})
        return data

    def to_representation(self, instance):
        data = super().to_representation(instance)
        view = self.context.get("view")
        ids = (data.get("selection") or {}).get("ids")
        # A list shows many backfills: an id selection is summarised there, given in full on the detail.
        if getattr(view, "action", None) == "list" and ids and len(ids) > LISTED_IDS:
            data["selection"] = {**data["selection"], "ids": ids[:LISTED_IDS], "ids_total": len(ids),
                                 "ids_truncated": True}
        return data

    def get_progress(self, obj) -> dict:
        p = progress(obj)
        return {"percent": round(p.percent, 2), "rows_done": p.rows_done, "rows_total": p.rows_total,
                "rows_per_second": round(p.rows_per_second, 1), "eta_seconds": p.eta_seconds, "chunks": p.chunks}


class ThrottleSerializer(serializers.Serializer):
    rows_per_second = serializers.IntegerField(min_value=1, max_value=MAX_ROWS_PER_SECOND, allow_null=True)


class CutoverStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = CutoverStep
        fields = ["step", "actor", "at", "ok", "detail"]


class CutoverSerializer(serializers.ModelSerializer):
    blueprint = serializers.SlugRelatedField(slug_field="name", queryset=IndexBlueprint.objects.all())
    from_index = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    to_index = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                                help_text="Null when the user was deleted.")
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                               help_text="Null until a second admin approves.")
    rows_per_second = serializers.IntegerField(min_value=1, max_value=MAX_ROWS_PER_SECOND, required=False, allow_null=True)
    steps = CutoverStepSerializer(many=True, read_only=True)
    revision = serializers.IntegerField(source="revision.number", required=False, allow_null=True, min_value=1,
                                        help_text="Revision to build from; default: the blueprint's newest.")

    def validate(self, attrs):
        number = (attrs.pop("revision", None) or {}).get("number")
        if number is not None:
            revision = attrs["blueprint"].revisions.filter(number=number).first()
            if revision is None:
                raise serializers.ValidationError({"revision": f"{attrs['blueprint'].name} has no revision {number}"})
            attrs["revision_obj"] = revision
        return attrs

    class Meta:
        model = Cutover
        fields = ["id", "blueprint", "revision", "state", "from_index", "to_index", "backfill", "rows_per_second", "requested_by",
                  "approved_by", "approved_at", "guard_results", "mapping_diff", "executed_at", "rollback_until",
                  "created_at", "steps"]
        read_only_fields = ["id", "state", "backfill", "approved_at", "guard_results", "mapping_diff", "executed_at",
                            "rollback_until", "created_at"]
