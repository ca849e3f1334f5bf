"""Backfill pages: list, start form, live progress, throttle and pause/resume/cancel."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backfills import services
from backfills.models import Backfill
from backfills.states import is_final
from indexing.permissions import OPERATE, operator_required

from .backfill_forms import BackfillForm, ThrottleForm


# "throttle" is the fourth action; it takes a form, so it is handled on its own below.
ACTIONS = {"pause": services.pause, "resume": services.resume, "cancel": services.cancel}


@require_http_methods(["GET", "POST"])
def backfill_list(request):
    if request.method == "POST" and not request.user.has_perm(OPERATE):
        raise PermissionDenied("Starting a backfill needs the operate_pipeline permission.")
    form = BackfillForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            backfill = services.schedule(data["blueprint"], target_index=data["target_index"], selection=data["selection"],
                                         rows_per_second=data["rows_per_second"], user=request.user,
                                         parallelism=data["parallelism"])
        except services.BackfillStateError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Backfill started: {backfill.rows_total} rows into {backfill.target_index.name}.")
            return redirect("dashboard:backfill", pk=backfill.pk)
    backfills = Backfill.objects.select_related("blueprint", "target_index", "requested_by")[:100]
    rows = [(b, services.progress(b)) for b in backfills]
    return render(request, "dashboard/backfills.html", {"form": form, "rows": rows})


@require_GET
def backfill_detail(request, pk):
    backfill = get_object_or_404(Backfill.objects.select_related("blueprint", "target_index"), pk=pk)
    context = {"backfill": backfill, "progress": services.progress(backfill), "chunks": backfill.chunks.all()[:200],
               "actions": services.allowed_actions(backfill) if request.user.has_perm(OPERATE) else [],
               "final": is_final(backfill),
               "throttle_form": ThrottleForm(initial={"rows_per_second": backfill.rows_per_second})}
    template = "dashboard/_backfill_progress.html" if request.htmx else "dashboard/backfill_detail.html"
    return render(request, template, context)


@require_POST
@operator_required
def backfill_action(request, pk, action):
    if action not in ACTIONS and action != "throttle":
        raise Http404(f"no backfill action {action!r}")
    backfill = get_object_or_404(Backfill, pk=pk)
    if action == "cancel" and not request.POST.get("confirmed"):
        return render(request, "dashboard/confirm.html", {
            "title": "Cancel this backfill?",
            "body": f"Workers stop after their current page; {backfill.target_index.name} keeps what was indexed so far.",
            "button": "Yes, cancel the backfill", "danger": True, "cancel_url": request.META.get("HTTP_REFERER", "/")})
    try:
        if action == "throttle":
            form = ThrottleForm(request.POST)
            if not form.is_valid():
                messages.error(request, "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
                return redirect("dashboard:backfill", pk=pk)
            services.set_rate(backfill, form.cleaned_data["rows_per_second"], user=request.user)
            messages.success(request, f"Rate set to {form.cleaned_data['rows_per_second'] or 'unthrottled'}; "
                                      "workers apply it from their next page.")
        else:
            ACTIONS[action](backfill, user=request.user)
            messages.success(request, f"Backfill {action}d." if action != "cancel" else "Backfill cancelled.")
    except services.BackfillStateError as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:backfill", pk=pk)
