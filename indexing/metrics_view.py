from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from indexing.observability.metrics import SearchsyncCollector


@never_cache
@login_not_required
@require_GET
def metrics(request):
    # A registry per scrape: the collector reads shared state, nothing accumulates in this process.
    registry = CollectorRegistry()
    registry.register(SearchsyncCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
