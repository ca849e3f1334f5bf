"""List pagination with bounds: ?limit= is capped at MAX_PAGE_SIZE, and a limit or offset that is not
a usable integer is a 400 (DRF would silently fall back to its defaults, or pass PostgreSQL an offset
beyond bigint)."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

from indexing.core.limits import MAX_PAGE_SIZE

MAX_OFFSET = 2**62  # far beyond any table, well inside bigint


def _integer(request, name: str, minimum: int, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"A whole number is required, not {raw[:40]!r}."]}) from None
    if value < minimum:
        raise ValidationError({name: [f"Ensure this value is at least {minimum}."]})
    if maximum is not None and value > maximum:
        raise ValidationError({name: [f"Ensure this value is at most {maximum}."]})
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request):
        limit = _integer(request, self.limit_query_param, 1)
        # Larger limits are served as the largest page, as DRF's max_limit does.
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return _integer(request, self.offset_query_param, 0, MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.limit_query_param:
                param["schema"] = {**param["schema"], "minimum": 1}
                param["description"] = (f"Number of results per page; values above {self.max_limit} return "
                                        f"{self.max_limit}. Not a whole number ≥ 1: 400.")
            elif param["name"] == self.offset_query_param:
                param["schema"] = {**param["schema"], "minimum": 0, "maximum": MAX_OFFSET}
                param["description"] = "Index of the first result. Not a whole number in range (e.g. `null`): 400."
        return params
