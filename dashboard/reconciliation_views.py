"""Reconciliation pages: runs per index, one report with its sample ids, and starting a run
(a repairing run behind a confirm step). Running reports poll themselves every 2 s."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from indexing.permissions import operator_required

from indexing import reconciliation
from indexing.models import IndexBlueprint, Reconciliation

from .reconciliation_forms import ReconciliationStartForm

HISTORY_PER_INDEX = 15


def _history():
    reports = Reconciliation.objects.select_related("blueprint", "requested_by")
    return [(bp, list(reports.filter(blueprint=bp)[:HISTORY_PER_INDEX])) for bp in IndexBlueprint.objects.all()]


@require_GET
def reconciliation_list(request):
    return render(request, "dashboard/reconciliations.html", {"form": ReconciliationStartForm(), "history": _history()})


@require_POST
@operator_required
def reconciliation_start(request):
    form = ReconciliationStartForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/reconciliations.html", {"form": form, "history": _history()}, status=400)
    data = form.cleaned_data
    if not form.dry_run and not data["confirmed"]:
        return render(request, "dashboard/reconciliation_confirm.html", {"form": form, "data": data})
    report = reconciliation.start(data["blueprint_obj"], dry_run=form.dry_run, rows_per_second=data["rows_per_second"],
                                  user=request.user, index_name=data["index"])
    messages.success(request, f"Reconciliation #{report.pk} of {report.index_name} started"
                              f"{' (dry run)' if report.dry_run else ''}.")
    return redirect("dashboard:reconciliation", pk=report.pk)


@require_GET
def reconciliation_detail(request, pk):
    report = get_object_or_404(Reconciliation.objects.select_related("blueprint", "requested_by"), pk=pk)
    if request.htmx:
        return render(request, "dashboard/_reconciliation_report.html", {"report": report})
    return render(request, "dashboard/reconciliation_detail.html", {"report": report})


@require_GET
def reconciliation_row(request, pk):
    report = get_object_or_404(Reconciliation.objects.select_related("blueprint", "requested_by"), pk=pk)
    return render(request, "dashboard/_reconciliation_row.html", {"report": report})
