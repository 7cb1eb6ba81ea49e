from shop.settings.env import BASE_DIR, VAR_DIR, env

DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "storages",
    "shop.core",
    "shop.shoppers",
    "shop.scans",
    "shop.carts",
    "shop.campaigns",
    "catalog",
]

MIDDLEWARE = [
    "shop.core.middleware.RequestIdMiddleware",
    "shop.core.middleware.RequestCharsetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "shop.core.middleware.AppendSlashMiddleware",  # CommonMiddleware; a slash redirect keeps a POST's method
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "shop.core.middleware.ProblemDetailsMiddleware",
]

SESSION_ENGINE = "shop.core.sessions"  # database sessions; a forged key is no session, not a 500

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Uploads: the body limit is a little above the image byte limit so that the decoder, not Django,
# reports an oversized photo with its own error code.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
# how long an Idempotency-Key's stored answer is replayed; older ones are forgotten (and purged hourly)
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# a request still running under a key (checkout, which commits its order before the charge) answers a
# second one 409 request_in_progress; a claim older than this is taken over (its process died)
IDEMPOTENCY_IN_PROGRESS_SECONDS = env.int("IDEMPOTENCY_IN_PROGRESS_SECONDS", default=120)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "shop.core.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "shop.core.problems.drf_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "shop.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "shop.core.problems.ProblemJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Scan creation and checkout only (the classes pass every other request); rates: THROTTLE_* at the end.
    "DEFAULT_THROTTLE_CLASSES": [
        "shop.shoppers.throttles.ScanCreateShopperThrottle",
        "shop.shoppers.throttles.ScanCreateIpThrottle",
        "shop.shoppers.throttles.CheckoutShopperThrottle",
        "shop.shoppers.throttles.CheckoutIpThrottle",
        "shop.shoppers.throttles.UploadShopperThrottle",
        "shop.shoppers.throttles.UploadIpThrottle",
        "shop.shoppers.throttles.RefineShopperThrottle",
        "shop.shoppers.throttles.RefineIpThrottle",
        "shop.shoppers.throttles.RegisterIpThrottle",
    ],
    # The client IP is REMOTE_ADDR (0), or the Nth address from the right of X-Forwarded-For behind
    # N trusted proxies; DRF's default (None) trusts the whole, client-written header.
    "NUM_PROXIES": env.int("THROTTLE_NUM_PROXIES", default=0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Shop-the-look API",
    "DESCRIPTION": "Photo and ad scans, visual product search, carts and campaign reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI files are served by the project (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Stable enum names in the schema, so generated app clients do not change when a model is added.
    "ENUM_NAME_OVERRIDES": {
        "ScanStatusEnum": "shop.scans.models.Scan.Status",
        "OrderStatusEnum": "shop.carts.models.Order.Status",
    },
}

# Checkout charges through this provider (a dotted path); the default is the test provider.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="shop.carts.payments.TestPaymentProvider")
# Orders still pending payment this long after checkout wrote them (longer than the provider's client
# may wait for an answer) are settled by `reconcile_pending_orders` from what the provider knows.
CHECKOUT_PENDING_SECONDS = env.int("CHECKOUT_PENDING_SECONDS", default=300)

# Throttling: a brake on scan creation, not a security boundary (see shop/shoppers/throttles.py).
# DRF keeps the counts in the default cache; production needs a cache shared by all processes (Redis).
# An empty rate turns that limit off.
THROTTLE_SCANS_PER_SHOPPER = env.str("THROTTLE_SCANS_PER_SHOPPER", default="60/min")
THROTTLE_SCANS_PER_IP = env.str("THROTTLE_SCANS_PER_IP", default="300/min")
THROTTLE_CHECKOUTS_PER_SHOPPER = env.str("THROTTLE_CHECKOUTS_PER_SHOPPER", default="10/min")
THROTTLE_CHECKOUTS_PER_IP = env.str("THROTTLE_CHECKOUTS_PER_IP", default="60/min")
THROTTLE_UPLOADS_PER_SHOPPER = env.str("THROTTLE_UPLOADS_PER_SHOPPER", default="60/min")
THROTTLE_UPLOADS_PER_IP = env.str("THROTTLE_UPLOADS_PER_IP", default="300/min")
THROTTLE_REFINES_PER_SHOPPER = env.str("THROTTLE_REFINES_PER_SHOPPER", default="60/min")
THROTTLE_REFINES_PER_IP = env.str("THROTTLE_REFINES_PER_IP", default="300/min")
THROTTLE_REGISTRATIONS_PER_IP = env.str("THROTTLE_REGISTRATIONS_PER_IP", default="20/min")

# A cache shared by every process (Redis) for throttling counts; empty: per-process memory (one machine).
CACHE_URL = env.str("CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
