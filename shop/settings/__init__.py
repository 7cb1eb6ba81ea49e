"""Settings, split per concern. Every value comes from the environment; see .env.example."""

from shop.settings.security import *  # noqa: F401,F403  (first: it refuses a half-configured production)
from shop.settings.base import *  # noqa: F401,F403
from shop.settings.database import *  # noqa: F401,F403
from shop.settings.celery import *  # noqa: F401,F403
from shop.settings.storage import *  # noqa: F401,F403
from shop.settings.vision import *  # noqa: F401,F403
from shop.settings.logging import *  # noqa: F401,F403
