from django.urls import path

from catalog.apis import SimilarProductsApi

urlpatterns = [
    path("<int:product_id>/similar/", SimilarProductsApi.as_view(), name="product-similar"),
]
