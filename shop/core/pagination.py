"""Pagination of list endpoints."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=` (default PAGE_SIZE, at most `max_limit`) and `?offset=`. A larger limit is served as
    the largest page, not passed on: 2**63 and more would overflow the database's LIMIT."""

    max_limit = 100
