from django.urls import path

from shop.carts.apis import CartApi, CartItemAddApi, CartItemDetailApi, OrderDetailApi, OrderListCreateApi

urlpatterns = [
    path("cart/", CartApi.as_view(), name="cart"),
    path("cart/items/", CartItemAddApi.as_view(), name="cart-items"),
    path("cart/items/<int:line_id>/", CartItemDetailApi.as_view(), name="cart-item"),
    path("orders/", OrderListCreateApi.as_view(), name="order-list"),
    path("orders/<uuid:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
]
