"""REST API of reconciliations: the reports, starting a run, changing a running run's throttle."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

import audit

from indexing import reconciliation
from indexing.core.limits import MAX_ROWS_PER_SECOND
from indexing.models import IndexBlueprint, Reconciliation
from indexing.permissions import OPERATE


class ReconciliationSerializer(serializers.ModelSerializer):
    blueprint = serializers.SlugRelatedField(slug_field="name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                                help_text="Null for scheduled runs (beat) or a deleted user.")
    drift = serializers.IntegerField(read_only=True, help_text="Sum of the four drift classes.")
    sample_ids = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), read_only=True,
                                       help_text=f"Up to {Reconciliation.SAMPLE_SIZE} ids per drift class.")

    class Meta:
        model = Reconciliation
        fields = ["id", "blueprint", "index_name", "status", "dry_run", "rows_per_second", "requested_by",
                  "created_at", "started_at", "finished_at", "duration_s", "checked_db", "checked_index",
                  "missing", "stale", "orphaned", "expired_tombstones", "drift", "sample_ids", "repaired", "purged",
                  "error"]
        read_only_fields = fields


class ReconciliationStartSerializer(serializers.Serializer):
    blueprint = serializers.SlugRelatedField(slug_field="name", queryset=IndexBlueprint.objects.all())
    dry_run = serializers.BooleanField(default=True, help_text="true (the default) only classifies; false repairs.")
    rows_per_second = serializers.IntegerField(min_value=1, max_value=MAX_ROWS_PER_SECOND, allow_null=True,
                                               required=False, default=None,
                                               help_text="Read throttle; null = unthrottled.")
    index = serializers.CharField(required=False, allow_blank=True, default="",
                                  help_text="A live or building index of the blueprint, or its sidecar; the live one if omitted.")

    def validate(self, data):
        try:
            data["index"] = reconciliation.target_index(data["blueprint"], data.get("index") or None)
        except reconciliation.ReconciliationError as exc:
            raise serializers.ValidationError({"index" if data.get("index") else "blueprint": [str(exc)]}) from exc
        return data


class ReconciliationThrottleSerializer(serializers.Serializer):
    rows_per_second = serializers.IntegerField(min_value=1, max_value=MAX_ROWS_PER_SECOND, allow_null=True)


class ReconciliationFilterSerializer(serializers.Serializer):
    blueprint = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=Reconciliation.Status.choices, required=False)


class ReconciliationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ReconciliationSerializer
    change_permission = OPERATE

    def get_queryset(self):
        qs = Reconciliation.objects.select_related("blueprint", "requested_by")
        if self.action != "list":
            return qs
        params = ReconciliationFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        if params.validated_data.get("blueprint"):
            qs = qs.filter(blueprint__name=params.validated_data["blueprint"])
        if params.validated_data.get("status"):
            qs = qs.filter(status=params.validated_data["status"])
        return qs

    @extend_schema(parameters=[ReconciliationFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=ReconciliationStartSerializer,
        responses={
            202: OpenApiResponse(ReconciliationSerializer, description="Queued; poll the report by its id."),
            400: OpenApiResponse(description="Field errors."),
            409: OpenApiResponse(description="A reconciliation of this index is already running."),
        },
    )
    def create(self, request):
        body = ReconciliationStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if reconciliation.is_running(data["index"]):
            return Response({"detail": f"a reconciliation of {data['index']} is already running"},
                            status=status.HTTP_409_CONFLICT)
        report = reconciliation.start(data["blueprint"], dry_run=data["dry_run"],
                                      rows_per_second=data["rows_per_second"], user=request.user,
                                      index_name=data["index"])
        return Response(ReconciliationSerializer(report).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReconciliationThrottleSerializer, responses=ReconciliationSerializer)
    @action(detail=True, methods=["post"])
    def throttle(self, request, pk=None):
        """Change the rows/s limit; a running reconciliation applies it from its next chunk."""
        report = self.get_object()
        body = ReconciliationThrottleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        Reconciliation.objects.filter(pk=report.pk).update(rows_per_second=body.validated_data["rows_per_second"])
        audit.record(request.user, "reconciliation.throttle", f"reconciliation:{report.pk} {report.index_name}",
                     details={"rows_per_second": body.validated_data["rows_per_second"]})
        report.refresh_from_db()
        return Response(ReconciliationSerializer(report).data)
