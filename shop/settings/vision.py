from django.core.exceptions import ImproperlyConfigured

from shop.settings.env import env

# A registry key from vision/registry.py, or "auto": clip-vit-b-32 when its weights are on this
# machine, otherwise the weights-free colour-and-texture embedder.
VISION_MODEL = env.str("VISION_MODEL", default="auto")
VISION_WEIGHTS_PATH = env.str("VISION_WEIGHTS_PATH", default="") or None
# Development only: build open_clip models with random weights when no weights can be had.
VISION_ALLOW_RANDOM_WEIGHTS = env.bool("VISION_ALLOW_RANDOM_WEIGHTS", default=False)
VISION_DEVICE = env.str("VISION_DEVICE", default="") or None
VISION_THREADS = env.int("VISION_THREADS", default=0) or None

# Catalog indexing and search.
INDEX_BATCH_SIZE = env.int("INDEX_BATCH_SIZE", default=16)
SEARCH_EF_SEARCH = env.int("SEARCH_EF_SEARCH", default=100)

# Catalog imports that name pictures by URL.
IMPORT_URL_TIMEOUT = env.float("IMPORT_URL_TIMEOUT", default=10.0)
IMPORT_URL_SCHEMES = tuple(env.list("IMPORT_URL_SCHEMES", default=["https", "http"]))
# Loopback and private addresses are refused unless allowed (an intranet image server).
IMPORT_URL_ALLOW_PRIVATE = env.bool("IMPORT_URL_ALLOW_PRIVATE", default=False)

# Scans (shop the look).
SCAN_RETENTION_DAYS = env.int("SCAN_RETENTION_DAYS", default=30)
# A prefix of files to delete (an erased shopper's) is listed again this long after, for files an
# upload still in flight wrote into it meanwhile (longer than a request may take).
FILE_DELETION_SETTLE_SECONDS = env.int("FILE_DELETION_SETTLE_SECONDS", default=300)
SCAN_RESULTS_PER_ITEM = env.int("SCAN_RESULTS_PER_ITEM", default=8)
SCAN_MAX_ITEMS = env.int("SCAN_MAX_ITEMS", default=6)
SCAN_WAIT_MAX_SECONDS = env.float("SCAN_WAIT_MAX_SECONDS", default=10.0)
# The admin's near-duplicate check of a new creative runs in the web process up to this many recognisable
# creatives (their index, ~0.12 MiB each, stays in the process); past it a vision worker makes it.
CREATIVE_DUPLICATE_CHECK_IN_WEB = env.int("CREATIVE_DUPLICATE_CHECK_IN_WEB", default=1000)
# Requests that wait for their scan, per web process (each holds a thread meanwhile); more answer 202 at once.
SCAN_WAITING_PER_PROCESS = env.int("SCAN_WAITING_PER_PROCESS", default=2)
SCAN_MAX_ATTEMPTS = env.int("SCAN_MAX_ATTEMPTS", default=3)
# A scan still pending or processing after this long is queued again (lost message, dead worker).
SCAN_REQUEUE_AFTER_SECONDS = env.int("SCAN_REQUEUE_AFTER_SECONDS", default=300)
# "No confident match" below this cosine similarity, per model key ("*" for the others), e.g.
# "color-texture-v1=0.93,clip-vit-b-32=0.75,*=0.5".
def _min_scores(pairs: list[str]) -> dict[str, float]:
    scores = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError("each entry is key=score")
            scores[key.strip()] = float(value)
        except ValueError as exc:  # a bare 0.7 was dropped: every match then counted as confident
            raise ImproperlyConfigured(f"SCAN_MIN_SCORE: {pair!r}: {exc} (e.g. clip-vit-b-32=0.75,*=0.5)") from exc
    return scores


SCAN_MIN_SCORE = _min_scores(env.list("SCAN_MIN_SCORE", default=["color-texture-v1=0.9", "*=0.6"]))
# How much the words of a refinement ("in red") weigh against the picture, for models with text.
REFINE_TEXT_WEIGHT = env.float("REFINE_TEXT_WEIGHT", default=0.6)

# Campaign attribution: scans within this many days before an order count (stored per order).
ATTRIBUTION_WINDOW_DAYS = env.int("ATTRIBUTION_WINDOW_DAYS", default=7)
