"""The audit trail page: every operator and admin action, filtered by actor, action and date."""

from django import forms
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.models import AuditEvent
from audit.queries import matching

VIEW_AUDIT = "audit.view_auditevent"


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64, help_text="e.g. backfill or cutover.approve")
    outcome = forms.ChoiceField(required=False, choices=[("", "any outcome")] + list(AuditEvent.Outcome.choices))
    target = forms.CharField(required=False, max_length=255)
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


@require_GET
@permission_required(VIEW_AUDIT, raise_exception=True)
def audit_list(request):
    form = AuditFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = matching(**filters)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()[:200]
    return render(request, "dashboard/audit.html", {"form": form, "page": page, "query": query.urlencode(),
                                                    "actions": actions})
