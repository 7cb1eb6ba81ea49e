from __future__ import annotations

from contextlib import contextmanager

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.carts.models import Order
from shop.carts.selectors import cart_line_of, cart_summary, order_of, orders_of
from shop.carts.serializers import (
    CartItemAddInputSerializer,
    CartLineUpdateInputSerializer,
    CartSerializer,
    OrderPlaceInputSerializer,
    OrderSerializer,
)
from shop.carts.services import (
    CartError,
    PaymentPending,
    cart_add_item,
    cart_get_open,
    cart_line_remove,
    cart_line_update,
    order_place,
)
from shop.core.idempotency import HEADER, fingerprint, idempotent
from shop.core.problems import Problem
from shop.shoppers.permissions import IsShopper

IDEMPOTENCY_PARAMETER = OpenApiParameter(HEADER, str, OpenApiParameter.HEADER, description="replay-safe retries")


@contextmanager
def conflicts_as_problems():
    """The cart's domain conflicts (stock, currency, unavailable product...) answer 409."""
    try:
        yield
    except CartError as exc:
        raise Problem(status=409, code=exc.code, detail=exc.detail, **exc.extensions) from exc


def _cart_body(shopper) -> dict:
    return CartSerializer(cart_summary(cart=cart_get_open(shopper=shopper))).data


def _line_or_404(request, line_id):
    line = cart_line_of(shopper=request.shopper, line_id=line_id)
    if line is None:
        raise Problem(status=404, code="not_found", detail="No such line in your cart.")
    return line


class CartApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(operation_id="cart_read", responses=CartSerializer, tags=["cart"])
    def get(self, request):
        return Response(_cart_body(request.shopper))


class CartItemAddApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(
        operation_id="cart_add_item",
        request=CartItemAddInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: CartSerializer, 200: CartSerializer},
        tags=["cart"],
    )
    def post(self, request):
        form = CartItemAddInputSerializer(data=request.data, context={"shopper": request.shopper})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        variant, scan = data["variant_id"], data.get("scan_id")

        def add() -> Response:
            with conflicts_as_problems():
                _, created = cart_add_item(
                    shopper=request.shopper, variant=variant, quantity=data["quantity"], scan=scan
                )
            return Response(
                _cart_body(request.shopper), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
            )

        request_fingerprint = fingerprint(
            "cart_add_item", str(variant.id), str(data["quantity"]), str(scan.id if scan else "")
        )
        return idempotent(request=request, request_fingerprint=request_fingerprint, produce=add)


class CartItemDetailApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(
        operation_id="cart_update_item", request=CartLineUpdateInputSerializer, responses=CartSerializer, tags=["cart"]
    )
    def patch(self, request, line_id):
        line = _line_or_404(request, line_id)
        form = CartLineUpdateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with conflicts_as_problems():
            cart_line_update(line=line, quantity=form.validated_data["quantity"])
        return Response(_cart_body(request.shopper))

    @extend_schema(operation_id="cart_remove_item", request=None, responses=CartSerializer, tags=["cart"])
    def delete(self, request, line_id):
        with conflicts_as_problems():
            cart_line_remove(line=_line_or_404(request, line_id))
        return Response(_cart_body(request.shopper))


class OrderListCreateApi(ListAPIView):
    permission_classes = (IsShopper,)
    serializer_class = OrderSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no shopper
            return Order.objects.none()
        return orders_of(shopper=self.request.shopper)

    @extend_schema(operation_id="order_list", tags=["orders"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="order_place",
        request=OrderPlaceInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OrderSerializer},
        tags=["orders"],
    )
    def post(self, request):
        form = OrderPlaceInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token = form.validated_data["payment_token"]
        expected = form.validated_data.get("expected_total"), form.validated_data.get("expected_currency")
        # With or without the header, a checkout sent again after it stopped past writing the order (503)
        # takes up that pending order and its charge key: it is charged once.

        def place() -> Response:
            with conflicts_as_problems():
                try:
                    order = order_place(shopper=request.shopper, payment_token=token,
                                        expected_total=expected[0], expected_currency=expected[1],
                                        client_key=request.headers.get(HEADER) or "")
                except PaymentPending as exc:
                    problem = Problem(status=503, code="payment_pending", order_id=str(exc.order.id),
                                      detail="The payment provider did not answer. Send the same checkout again: "
                                             "it is charged at most once.")
                    problem.wait = 5
                    raise problem from exc
            return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)

        shown = [f"{name}={value}" for name, value in zip(("total", "currency"), expected) if value is not None]
        # Not in one transaction with the stored answer: the order must be committed before the charge.
        response = idempotent(request=request, request_fingerprint=fingerprint("order_place", token, *shown),
                              produce=place, atomic=False)
        if response.status_code == 201 and response.data["status"] == Order.Status.PAYMENT_FAILED:
            # The declined order is stored (and so is this answer, for a retry with the same key);
            # the shopper's cart and the stock are as they were.
            late = bool(response.data.get("payment_reference"))  # charged after it was given up: refunded
            declined = Problem(
                status=402,
                code="payment_refunded" if late else "payment_declined",
                detail=("The payment came after this checkout was given up; it is being refunded." if late
                        else "The payment was declined; nothing was charged."),
                order_id=response.data["id"],
                failure_reason=response.data["payment_failure_reason"],
            )
            declined.replayed = response.has_header("Idempotent-Replayed")
            raise declined
        return response


class OrderDetailApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(operation_id="order_read", responses=OrderSerializer, tags=["orders"])
    def get(self, request, order_id):
        order = order_of(shopper=request.shopper, order_id=order_id)
        if order is None:
            raise Problem(status=404, code="not_found", detail="No such order.")
        return Response(OrderSerializer(order).data)
