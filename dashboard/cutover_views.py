"""The cutover wizard: request, watch the build, read the guards and the mapping diff,
approve (admins other than the requester), swap and roll back behind a confirm step.

Which actions a user may take on a cutover is decided by ``cutover.allowed_actions``,
the same rules the actions enforce; this module only renders and dispatches."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backfills import cutover as cutovers
from backfills import services
from backfills.models import Cutover
from backfills.states import is_final
from indexing.permissions import MANAGE_CUTOVERS, cutover_admin_required

from .backfill_forms import CutoverRequestForm

WIZARD = [Cutover.State.DRAFT, Cutover.State.BUILDING, Cutover.State.VERIFYING, Cutover.State.AWAITING_APPROVAL,
          Cutover.State.LIVE, Cutover.State.RETIRED]
# The swap's intermediate states show as the step they lead to.
WIZARD_STEP = {Cutover.State.SWAPPING: Cutover.State.AWAITING_APPROVAL, Cutover.State.ROLLING_BACK: Cutover.State.LIVE}
CONFIRM = {
    "execute": ("Swap the aliases?", "The read and write aliases move to the new index in one atomic request. "
                "Searches switch at once; the old index is kept for the rollback window.", "Yes, swap now", False),
    "rollback": ("Roll back?", "The aliases move back to the previous index in one atomic request; the new index "
                 "is retired.", "Yes, roll back", True),
    "cancel": ("Cancel this cutover?", "The build stops and the new index is retired. The live index is untouched.",
               "Yes, cancel", True),
}
STEPS = {"verify": (cutovers.verify, "Guards run again."), "approve": (cutovers.approve, "Approved."),
         "execute": (cutovers.execute, "Aliases swapped."), "rollback": (cutovers.rollback, "Rolled back."),
         "cancel": (cutovers.cancel, "Cutover cancelled.")}


@require_http_methods(["GET", "POST"])
def cutover_list(request):
    if request.method == "POST" and not request.user.has_perm(MANAGE_CUTOVERS):
        raise PermissionDenied("Requesting a cutover needs the approve_cutover permission (admins).")
    form = CutoverRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cutover = cutovers.request(form.cleaned_data["blueprint"], request.user, form.cleaned_data["rows_per_second"],
                                       revision=form.cleaned_data["revision"])
            cutovers.start_build(cutover, request.user)
        except cutovers.CutoverRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Cutover requested: building {cutover.to_index.name}.")
            return redirect("dashboard:cutover", pk=cutover.pk)
    cutover_rows = Cutover.objects.select_related("blueprint", "from_index__revision", "to_index__revision", "revision",
                                                 "requested_by", "approved_by")[:100]
    return render(request, "dashboard/cutovers.html", {"form": form, "cutovers": cutover_rows})


@require_GET
def cutover_detail(request, pk):
    cutover = get_object_or_404(Cutover.objects.select_related("blueprint", "from_index", "to_index", "backfill",
                                                               "requested_by", "approved_by"), pk=pk)
    shown = WIZARD_STEP.get(cutover.state, cutover.state)
    reached = WIZARD.index(shown) if shown in WIZARD else -1
    context = {
        "cutover": cutover,
        "actions": cutovers.allowed_actions(cutover, request.user),
        "final": is_final(cutover),
        "wizard": [(s.label, i < reached, i == reached) for i, s in enumerate(WIZARD)],
        "progress": services.progress(cutover.backfill) if cutover.backfill else None,
    }
    template = "dashboard/_cutover_body.html" if request.htmx else "dashboard/cutover_detail.html"
    return render(request, template, context)


@require_POST
@cutover_admin_required
def cutover_action(request, pk, action):
    if action not in STEPS:
        raise Http404(f"no cutover action {action!r}")
    cutover = get_object_or_404(Cutover, pk=pk)
    if action in CONFIRM and not request.POST.get("confirmed"):
        title, body, button, danger = CONFIRM[action]
        return render(request, "dashboard/confirm.html", {"title": title, "body": body, "button": button,
                                                          "danger": danger, "cancel_url": f"/cutovers/{pk}/"})
    step, done = STEPS[action]
    try:
        step(cutover, request.user)
    except cutovers.CutoverRefused as exc:
        messages.error(request, f"Refused: {exc}")
    else:
        messages.success(request, done)
    return redirect("dashboard:cutover", pk=pk)
