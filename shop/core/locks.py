"""Row locks the ORM does not offer."""

from __future__ import annotations

from django.db import connection


def key_share(model, ids) -> set:
    """FOR KEY SHARE on the rows of `model` with these primary keys; returns those that exist. Until the
    transaction ends they cannot be deleted (nor their keys changed), while updates of other columns,
    and other key-share locks, go on. The ORM's select_for_update has no such mode."""
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{pk}" FROM "{table}" WHERE "{pk}" = ANY(%s) FOR KEY SHARE', [list(ids)])
        return {row[0] for row in cursor.fetchall()}
