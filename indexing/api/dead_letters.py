"""REST API: dead letters (list, inspect, replay, discard)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from indexing.pipeline import dead_letters
from indexing.models import DeadLetter
from indexing.permissions import OPERATE
from indexing.api.dead_letter_serializers import (
    DeadLetterActionResultSerializer,
    DeadLetterBulkActionSerializer,
    DeadLetterFilterSerializer,
    DeadLetterSerializer,
)


class DeadLetterViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = DeadLetterSerializer
    change_permission = OPERATE

    def get_queryset(self):
        if self.action != "list":
            return DeadLetter.objects.select_related("blueprint")
        params = DeadLetterFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return dead_letters.matching(**{"status": None, **params.validated_data})

    @extend_schema(parameters=[DeadLetterFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _bulk_queryset(self, request):
        body = DeadLetterBulkActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("ids"):
            return dead_letters.matching(ids=data["ids"])
        return dead_letters.matching(**{**data.get("filters", {}), "status": DeadLetter.Status.PENDING})

    def _replay(self, qs):
        try:
            return Response({"replayed": dead_letters.replay(qs.order_by("pk"), user=self.request.user.username)})
        except dead_letters.ReplayFailed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)

    @extend_schema(request=None, responses=DeadLetterActionResultSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        letter = get_object_or_404(DeadLetter, pk=pk)
        if letter.status != DeadLetter.Status.PENDING:
            return Response({"status": [f"only pending dead letters can be replayed; this one is {letter.status}"]},
                            status=status.HTTP_400_BAD_REQUEST)
        return self._replay(DeadLetter.objects.filter(pk=letter.pk))

    @extend_schema(request=None, responses=DeadLetterActionResultSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        letter = get_object_or_404(DeadLetter, pk=pk)
        if letter.status != DeadLetter.Status.PENDING:
            return Response({"status": [f"only pending dead letters can be discarded; this one is {letter.status}"]},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response({"discarded": dead_letters.discard(DeadLetter.objects.filter(pk=letter.pk), request.user.username)})

    @extend_schema(request=DeadLetterBulkActionSerializer, responses=DeadLetterActionResultSerializer,
                   operation_id="dead_letters_replay_many")
    @action(detail=False, methods=["post"], url_path="replay")
    def replay_many(self, request):
        return self._replay(self._bulk_queryset(request))

    @extend_schema(request=DeadLetterBulkActionSerializer, responses=DeadLetterActionResultSerializer,
                   operation_id="dead_letters_discard_many")
    @action(detail=False, methods=["post"], url_path="discard")
    def discard_many(self, request):
        return Response({"discarded": dead_letters.discard(self._bulk_queryset(request), request.user.username)})
