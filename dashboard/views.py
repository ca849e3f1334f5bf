"""Console pages. Views stay thin: they gather from services and render."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from indexing.overview import all_index_statuses

from .dependencies import recent_checks


def _indices_context() -> dict:
    from indexing.connectors import replication_slots
    from indexing.models import Alert

    return {
        "statuses": all_index_statuses(),
        "slots": replication_slots(),
        "global_alerts": Alert.objects.filter(blueprint__isnull=True, state=Alert.State.OPEN),
    }


@require_GET
def overview(request):
    return render(request, "dashboard/overview.html", {"dependencies": recent_checks(), **_indices_context()})


@require_GET
def indices_partial(request):
    return render(request, "dashboard/_indices.html", _indices_context())


@require_GET
def dependencies_partial(request):
    return render(request, "dashboard/_dependencies.html", {"dependencies": recent_checks()})


@never_cache
@login_not_required
@require_GET
def healthz(request):
    """200 or 503 for load balancers; versions, cluster ids and worker names only for logged-in users."""
    deps = recent_checks()
    healthy = all(d.ok for d in deps)
    body = {"status": "ok" if healthy else "degraded"}
    if request.user.is_authenticated:
        body["dependencies"] = {d.name: d.as_dict() for d in deps}
    return JsonResponse(body, status=200 if healthy else 503)
