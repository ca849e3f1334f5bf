"""Console pages. Views stay thin: they gather from services and render."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from indexing.observability.overview import all_index_statuses, cluster_status

from .dependencies import recent_checks
from indexing.conf import searchsync_settings


def _indices_context() -> dict:
    from indexing.control.connectors import replication_slots
    from indexing.models import Alert


    from indexing.core.liveness import live_relays

    try:
        relays = live_relays() if searchsync_settings.PUBLISHER == "relay" else None
    except Exception:  # Redis down: the dependencies panel says so
        relays = None
    return {
        "statuses": all_index_statuses(),
        "cluster": cluster_status(),
        "relays_live": relays,
        "slots": replication_slots(),
        "global_alerts": Alert.objects.filter(blueprint__isnull=True, state=Alert.State.OPEN),
    }


@require_GET
def overview(request):
    from indexing.models import IndexBlueprint

    return render(request, "dashboard/overview.html", {
        "dependencies": recent_checks(), **_indices_context(),
        "blueprint_names": IndexBlueprint.objects.values_list("name", flat=True)})


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
    """200 or 503 for load balancers: 503 when a dependency is down or an enabled blueprint has
    nobody indexing it. Versions, cluster ids and worker names only for logged-in users."""
    from indexing.core.liveness import pipeline_liveness
    from indexing.models import IndexBlueprint

    deps = recent_checks()
    try:
        pipeline = pipeline_liveness(list(IndexBlueprint.objects.filter(enabled=True).values_list("name", flat=True)))
    except Exception as exc:  # Redis or Postgres down: already a failed dependency above
        pipeline = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    healthy = all(d.ok for d in deps) and pipeline["ok"]
    body = {"status": "ok" if healthy else "degraded"}
    if request.user.is_authenticated:
        body["dependencies"] = {d.name: d.as_dict() for d in deps}
        body["pipeline"] = pipeline
    return JsonResponse(body, status=200 if healthy else 503)
