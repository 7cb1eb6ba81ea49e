"""The one environment reader shared by the settings modules."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
# A local .env file is read when present (development convenience); real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("SHOP_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
