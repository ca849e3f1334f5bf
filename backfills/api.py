"""REST API: schedule and steer backfills; request, approve, execute and roll back cutovers."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from indexing.permissions import MANAGE_CUTOVERS, OPERATE

from . import cutover as cutovers
from . import services
from .models import Backfill, Cutover
from .serializers import BackfillSerializer, CutoverSerializer, ThrottleSerializer


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def refused(exc) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class BackfillViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = BackfillSerializer
    change_permission = OPERATE
    queryset = Backfill.objects.select_related("blueprint", "target_index", "requested_by")

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.schedule(
                data["blueprint"], target_index=data.get("target_index"),
                selection=data.get("selection") or {"kind": "all"}, rows_per_second=data.get("rows_per_second"),
                user=self.request.user, chunk_size=data["chunk_size"], parallelism=data["parallelism"])
        except services.BackfillStateError as exc:
            raise Conflict(str(exc)) from None
        serializer.instance.refresh_from_db()

    def _step(self, fn, *args):
        backfill = self.get_object()
        try:
            fn(backfill, *args, user=self.request.user)
        except services.BackfillStateError as exc:
            return refused(exc)
        backfill.refresh_from_db()
        return Response(self.get_serializer(backfill).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._step(services.pause)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._step(services.resume)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._step(services.cancel)

    @extend_schema(request=ThrottleSerializer)
    @action(detail=True, methods=["post"])
    def throttle(self, request, pk=None):
        body = ThrottleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._step(services.set_rate, body.validated_data["rows_per_second"])


class CutoverViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Create = request a cutover and start building the new index version."""

    serializer_class = CutoverSerializer
    change_permission = MANAGE_CUTOVERS
    queryset = Cutover.objects.select_related("blueprint", "revision", "from_index", "to_index", "requested_by",
                                              "approved_by")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            cutover = cutovers.request(data["blueprint"], request.user, data.get("rows_per_second"),
                                       revision=data.get("revision_obj"))
            cutover = cutovers.start_build(cutover, request.user)
        except cutovers.CutoverRefused as exc:
            return refused(exc)
        return Response(self.get_serializer(cutover).data, status=status.HTTP_201_CREATED)

    def _step(self, fn):
        cutover = self.get_object()
        try:
            fn(cutover, self.request.user)
        except (cutovers.ApprovalForbidden, cutovers.SelfApproval) as exc:
            # Four eyes is a permission rule, not a state conflict: retrying cannot succeed.
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except cutovers.CutoverRefused as exc:
            return refused(exc)
        cutover.refresh_from_db()
        return Response(self.get_serializer(cutover).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        return self._step(cutovers.verify)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._step(cutovers.approve)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        return self._step(cutovers.execute)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        return self._step(cutovers.rollback)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._step(cutovers.cancel)
