"""List pagination with bounds: ?limit= is capped, and an offset PostgreSQL cannot take is a 400."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

from indexing.limits import MAX_PAGE_SIZE

MAX_OFFSET = 2**62  # far beyond any table, well inside bigint


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE

    def get_offset(self, request):
        raw = request.query_params.get(self.offset_query_param)
        if raw is not None:
            try:
                if int(raw) > MAX_OFFSET:
                    raise ValidationError({self.offset_query_param: [f"Ensure this value is at most {MAX_OFFSET}."]})
            except ValueError:
                pass  # not a number: DRF's own rule (offset 0) applies
        return super().get_offset(request)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.limit_query_param:
                param["schema"] = {**param["schema"], "minimum": 1, "maximum": self.max_limit}
                param["description"] = f"Number of results to return per page (at most {self.max_limit})."
            elif param["name"] == self.offset_query_param:
                param["schema"] = {**param["schema"], "minimum": 0, "maximum": MAX_OFFSET}
        return params
