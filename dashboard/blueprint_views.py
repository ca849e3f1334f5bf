"""Blueprints and their revisions: which one serves, which one is building, a readable
diff between any two, and "Rebuild with this revision" (the cutover wizard)."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from indexing.control import revisions
from indexing.models import IndexBlueprint, PhysicalIndex
from indexing.permissions import MANAGE_CUTOVERS


def _rows(blueprint: IndexBlueprint) -> list[dict]:
    serving = blueprint.serving_revision
    # Ready and never served = built, awaiting its swap; a ready index that was live is the
    # previous one kept for the rollback window.
    building = set(blueprint.indices.filter(state__in=(PhysicalIndex.State.BUILDING, PhysicalIndex.State.READY),
                                            live_at__isnull=True).values_list("revision_id", flat=True))
    return [{"revision": r, "serving": serving is not None and r.pk == serving.pk, "building": r.pk in building,
             "indices": [i.name for i in r.indices.exclude(state=PhysicalIndex.State.RETIRED)]}
            for r in blueprint.revisions.all()]


@require_GET
def blueprint_list(request):
    blueprints = [{"blueprint": b, "revisions": _rows(b)} for b in IndexBlueprint.objects.all()]
    return render(request, "dashboard/blueprints.html", {"blueprints": blueprints,
                                                         "can_rebuild": request.user.has_perm(MANAGE_CUTOVERS)})


@require_GET
def revision_diff(request, name):
    blueprint = get_object_or_404(IndexBlueprint, name=name)
    try:
        a = blueprint.revisions.get(number=int(request.GET.get("a", 0)))
        b = blueprint.revisions.get(number=int(request.GET.get("b", 0)))
    except (ValueError, blueprint.revisions.model.DoesNotExist):
        raise Http404("pick two revisions of this blueprint")
    lines = revisions.diff(a.definition, b.definition, f"{name} r{a.number}", f"{name} r{b.number}")
    context = {"blueprint": blueprint, "a": a, "b": b, "lines": lines}
    template = "dashboard/_revision_diff.html" if request.htmx else "dashboard/revision_diff.html"
    return render(request, template, context)
