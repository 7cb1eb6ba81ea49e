from django.urls import path

from shop.scans.apis import ScanDetailApi, ScanListCreateApi, ScanPhotoApi, ScanRefineApi

urlpatterns = [
    path("", ScanListCreateApi.as_view(), name="scan-list"),
    path("<uuid:scan_id>/", ScanDetailApi.as_view(), name="scan-detail"),
    path("<uuid:scan_id>/search", ScanRefineApi.as_view(), name="scan-refine"),
    path("<uuid:scan_id>/photo", ScanPhotoApi.as_view(), name="scan-photo"),
]
