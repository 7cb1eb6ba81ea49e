from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shop.core.apis import HealthzApi, ReadyzApi
from shop.scans.apis import UploadApi

api_v1 = [
    path("shoppers/", include("shop.shoppers.urls")),
    path("scans/", include("shop.scans.urls")),
    path("uploads/", UploadApi.as_view(), name="upload-create"),
    path("products/", include("catalog.urls")),
    path("reports/", include("shop.campaigns.urls")),
    path("", include("shop.carts.urls")),
]

urlpatterns = [
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
]

if settings.STORAGE_BACKEND == "local":
    # Single-machine mode serves its own catalog and ad pictures; shoppers' photos are served only
    # to their owner, by the scans API. With S3, media URLs are signed bucket URLs.
    urlpatterns.append(
        re_path(r"^media/(?P<path>(products|creatives)/.+)$", serve, {"document_root": settings.MEDIA_ROOT})
    )

handler400 = "shop.core.problems.handler400"
handler403 = "shop.core.problems.handler403"
handler404 = "shop.core.problems.handler404"
handler500 = "shop.core.problems.handler500"

admin.site.site_header = "Shop-the-look administration"
admin.site.site_title = "Shop-the-look admin"
