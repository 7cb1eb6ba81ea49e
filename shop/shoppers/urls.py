from django.urls import path

from shop.shoppers.apis import ShopperExportApi, ShopperMeApi, ShopperRegisterApi

urlpatterns = [
    path("", ShopperRegisterApi.as_view(), name="shopper-register"),
    path("me", ShopperMeApi.as_view(), name="shopper-me"),
    path("me/export", ShopperExportApi.as_view(), name="shopper-export"),
]
