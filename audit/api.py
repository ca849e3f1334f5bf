"""GET /api/v1/audit/: the trail, newest first, paginated and filterable."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets

from .models import AuditEvent
from .queries import matching


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "ip_address", "action", "target", "outcome", "details"]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    actor = serializers.CharField(required=False, max_length=150, help_text="Exact username.")
    action = serializers.CharField(required=False, max_length=64,
                                   help_text="An action (cutover.approve) or its prefix (cutover).")
    outcome = serializers.ChoiceField(choices=AuditEvent.Outcome.choices, required=False)
    target = serializers.CharField(required=False, max_length=255, help_text="Part of the target.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class CanViewAudit(permissions.BasePermission):
    message = "This needs the view_auditevent permission."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("audit.view_auditevent"))


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEventSerializer
    permission_classes = [CanViewAudit]

    def get_queryset(self):
        if self.action != "list":
            return AuditEvent.objects.all()
        params = AuditFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return matching(**params.validated_data)

    @extend_schema(parameters=[AuditFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
