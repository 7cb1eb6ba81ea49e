"""Django's database sessions, refusing a session key that no session of ours could have.

Django checks only a key's length; a cookie like `sessionid="aaaaaaaa\\000"` (a NUL once unquoted)
reached the session table's query, which PostgreSQL refuses (DataError: a 500 on every API and
admin page for that request). Keys we issue are 32 lowercase letters and digits.
"""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key):
        return bool(super()._validate_session_key(key)) and key.isascii() and key.isalnum()
