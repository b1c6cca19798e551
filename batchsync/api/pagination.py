"""Page-number pagination inside the seed's success envelope."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from batchsync.bounds import PAGE_SIZE


class EnvelopePagination(PageNumberPagination):
    """`{"status": "success", "data": {"count", "next", "previous", "results"}}`.

    Two queries per page whatever its size: the COUNT and the page itself.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE.high

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None
        return Response(
            {
                "status": "success",
                "data": {
                    "count": self.page.paginator.count,
                    "next": self.get_next_link(),
                    "previous": self.get_previous_link(),
                    "results": data,
                },
            }
        )
