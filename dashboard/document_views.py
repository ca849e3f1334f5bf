"""The document inspector's pages: find a document, see where it stands, re-index it (operators, behind a confirm step)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from indexing.models import IndexBlueprint
from indexing.observability.inspector import BadDocumentId, clean_id, inspect
from indexing.permissions import OPERATE, operator_required
from indexing.reconciliation.reindex import CannotReindex, reindex_document


def _url(blueprint: str, entity_id: str) -> str:
    return reverse("dashboard:document", args=[blueprint, entity_id])


def _document(request, blueprint: str, raw_id: str):
    """(blueprint, id, None), or (blueprint, None, the 400 page) for an id its source cannot have; an unknown
    blueprint raises Http404."""
    found = get_object_or_404(IndexBlueprint, name=blueprint)
    try:
        return found, clean_id(found, raw_id), None
    except BadDocumentId as exc:
        return found, None, render(request, "dashboard/document_missing.html", {"error": str(exc), "blueprint": found},
                                   status=400)


@require_GET
def document_lookup(request):
    """The search boxes' target: a blueprint and an id → that document's page."""
    name, raw = request.GET.get("blueprint", ""), request.GET.get("id", "")
    try:
        found, entity_id, refused = _document(request, name, raw)
    except Http404:
        return render(request, "dashboard/document_missing.html",
                      {"error": f"No blueprint named “{name}”." if name else "Pick a blueprint."}, status=404)
    if refused:
        return refused
    return redirect(_url(found.name, entity_id))


@require_GET
def document_detail(request, blueprint, entity_id):
    found, entity_id, refused = _document(request, blueprint, entity_id)
    if refused:
        return refused
    return render(request, "dashboard/document.html", {
        "doc": inspect(found, entity_id), "can_reindex": request.user.has_perm(OPERATE)})


@require_POST
@operator_required
def document_reindex(request, blueprint, entity_id):
    found, entity_id, refused = _document(request, blueprint, entity_id)
    if refused:
        return refused
    if not request.POST.get("confirmed"):
        return render(request, "dashboard/confirm.html", {
            "title": f"Re-index {found.name} {entity_id}?",
            "body": "An event at the row's current version goes through the outbox, the relay and the consumer "
                    "like any change (a blueprint fed by table changes is written by the document writer). An index "
                    "copy already at that version keeps it; the action is recorded in the audit trail.",
            "button": "Yes, re-index", "cancel_url": _url(found.name, entity_id),
        })
    try:
        done = reindex_document(found, entity_id, request.user)
        messages.success(request, f"Re-indexed: {done.event} event at version {done.version} written via {done.via}.")
    except CannotReindex as exc:
        messages.error(request, f"Not re-indexed: {exc}")
    return redirect(_url(found.name, entity_id))
