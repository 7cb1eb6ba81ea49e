"""Validators shared by the apps' models."""

from __future__ import annotations

from django.core.exceptions import ValidationError


def no_null_characters_in_json(value) -> None:
    """PostgreSQL's jsonb refuses a NUL (\\u0000) in any string or key: such a value is the form's
    error, not a DataError (a 500) when the admin saves it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError("Text may not hold a NUL character (\\u0000).", code="null_characters_not_allowed")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
