"""Dead-letter pages: list with filters, one letter's raw bytes and error, replay and discard behind a confirm step."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from indexing.pipeline import dead_letters
from indexing.models import DeadLetter
from indexing.permissions import operator_required

from .forms import DeadLetterActionForm, DeadLetterFilterForm


def _filter_form(data):
    # An unfiltered first visit shows what needs attention: the pending letters.
    return DeadLetterFilterForm(data if data else {"status": DeadLetter.Status.PENDING})


@require_GET
def dead_letter_list(request):
    form = _filter_form(request.GET)
    qs = dead_letters.matching(**form.filters())
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    template = "dashboard/_dead_letter_table.html" if request.htmx else "dashboard/dead_letters.html"
    return render(request, template, {"form": form, "page": page, "total": qs.count(), "query": request.GET.urlencode()})


@require_GET
def dead_letter_detail(request, pk):
    letter = get_object_or_404(DeadLetter.objects.select_related("blueprint"), pk=pk)
    try:
        pretty = json.dumps(json.loads(letter.raw_text), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = None
    return render(request, "dashboard/dead_letter_detail.html", {"letter": letter, "pretty": pretty})


@require_POST
@operator_required
def dead_letter_action(request):
    form = DeadLetterActionForm(request.POST)
    filters = _filter_form(request.POST).filters()
    if not form.is_valid():
        for error in form.non_field_errors() or [f"{k}: {v[0]}" for k, v in form.errors.items()]:
            messages.error(request, error)
        return redirect(f"{_list_url()}?{request.POST.get('query', '')}")
    data = form.cleaned_data
    if data["scope"] == "selected":
        qs = dead_letters.matching(ids=data["ids"], status=DeadLetter.Status.PENDING)
    else:
        qs = dead_letters.matching(**{**filters, "status": DeadLetter.Status.PENDING})
    count = qs.count()
    if not data["confirmed"]:
        return render(request, "dashboard/dead_letter_confirm.html", {
            "action": data["action"], "scope": data["scope"], "count": count, "ids": data["ids"],
            "post": request.POST, "sample": qs[:10],
        })
    try:
        if data["action"] == "replay":
            done = dead_letters.replay(qs.order_by("pk"), user=request.user.username)
            messages.success(request, f"Replayed {done} dead letter(s) to their topics.")
        else:
            done = dead_letters.discard(qs, user=request.user.username)
            messages.success(request, f"Discarded {done} dead letter(s).")
    except dead_letters.ReplayFailed as exc:
        messages.error(request, f"Replay incomplete: {exc}")
    return redirect(f"{_list_url()}?{request.POST.get('query', '')}")


def _list_url():
    from django.urls import reverse

    return reverse("dashboard:dead_letters")
