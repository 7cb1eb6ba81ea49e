"""The one environment reader shared by the settings modules."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured


class _Env(environ.Env):
    """django-environ's reader, with two differences. A value that cannot be read names its variable
    (`UPLOAD_MAX_BYTES=20MB` was a bare "invalid literal for int()" traceback). A value starting with
    `$` is that value: django-environ reads `$NAME` as another variable's value, so a secret key that
    happened to start with `$` silently became the development key, or was refused as unset."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        raw = self.ENVIRON.get(f"{self.prefix}{var}")
        try:
            if isinstance(raw, str) and raw.startswith("$"):
                if cast is None and default is not self.NOTSET and default is not None:
                    cast = type(default)
                return raw if cast in (None, str) else self.parse_value(raw, cast)
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (ValueError, TypeError) as exc:
            kind = getattr(cast, "__name__", None) or "its type"
            raise ImproperlyConfigured(f"{self.prefix}{var} cannot be read as {kind}: {exc}") from exc


BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = _Env()
# A local .env file is read when present (development convenience); real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# A relative path is the repository's, wherever a command runs from.
VAR_DIR = (BASE_DIR / env.str("SHOP_VAR_DIR", default="var")).resolve()
