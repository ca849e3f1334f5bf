"""REST API of the document inspector: one document through database, outbox, Kafka, index and
search (``GET``), and its re-index by an operator (``POST .../reindex/``)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from indexing.api.document_serializers import DocumentInspectionSerializer, ReindexResultSerializer
from indexing.models import IndexBlueprint
from indexing.observability.inspector import BadDocumentId, clean_id, inspect
from indexing.permissions import OPERATE
from indexing.reconciliation.reindex import CannotReindex, reindex_document


def _document(blueprint: str, raw_id: str):
    """(blueprint, id) or the error response: 404 for an unknown blueprint, 400 for an id its source cannot have."""
    found = get_object_or_404(IndexBlueprint, name=blueprint)
    try:
        return found, clean_id(found, raw_id), None
    except BadDocumentId as exc:
        return found, None, Response({"id": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)


class DocumentView(APIView):
    change_permission = OPERATE

    @extend_schema(responses=DocumentInspectionSerializer, operation_id="documents_retrieve",
                   summary="Where one document stands: database, outbox, Kafka, every index copy, search, verdict")
    def get(self, request, blueprint, id):
        found, entity_id, error = _document(blueprint, id)
        if error:
            return error
        return Response(DocumentInspectionSerializer(inspect(found, entity_id), context={"request": request}).data)


class DocumentReindexView(APIView):
    change_permission = OPERATE

    @extend_schema(request=None, responses={202: ReindexResultSerializer}, operation_id="documents_reindex",
                   summary="Re-index one document at the row's current version, through the outbox (audited)")
    def post(self, request, blueprint, id):
        found, entity_id, error = _document(blueprint, id)
        if error:
            return error
        try:
            done = reindex_document(found, entity_id, request.user)
        except CannotReindex as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(ReindexResultSerializer(done).data, status=status.HTTP_202_ACCEPTED)
