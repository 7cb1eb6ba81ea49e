from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shop.core.apis import HealthzApi, ReadyzApi

api_v1 = [
    path("shoppers/", include("shop.shoppers.urls")),
]

urlpatterns = [
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
]

handler400 = "shop.core.problems.handler400"
handler403 = "shop.core.problems.handler403"
handler404 = "shop.core.problems.handler404"
handler500 = "shop.core.problems.handler500"

admin.site.site_header = "Shop-the-look administration"
admin.site.site_title = "Shop-the-look admin"
