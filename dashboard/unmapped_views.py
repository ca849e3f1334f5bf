"""Fields the mapping does not know: dropped from documents, listed here until acknowledged."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

import audit
from indexing.models import UnmappedField
from indexing.permissions import operator_required


@require_GET
def unmapped_list(request):
    show_all = request.GET.get("all") == "1"
    fields = UnmappedField.objects.all() if show_all else UnmappedField.objects.filter(acknowledged=False)
    return render(request, "dashboard/unmapped_fields.html", {"fields": fields[:500], "show_all": show_all})


@require_POST
@operator_required
def unmapped_acknowledge(request, pk):
    updated = UnmappedField.objects.filter(pk=pk).update(acknowledged=True)
    if updated:
        audit.record(request.user, "unmapped_field.acknowledge", f"unmapped_field:{pk}")
        messages.success(request, "Acknowledged. It reappears here if the field keeps arriving after a new mapping.")
    return redirect("dashboard:unmapped_fields")
