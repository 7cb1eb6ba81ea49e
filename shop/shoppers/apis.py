from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.scans.serializers import scan_photo_url
from shop.shoppers.permissions import IsShopper
from shop.shoppers.serializers import (
    ShopperOutputSerializer,
    ShopperRegisteredOutputSerializer,
    ShopperRegisterInputSerializer,
)
from shop.shoppers.selectors import shopper_export
from shop.shoppers.services import shopper_delete, shopper_register


class ShopperRegisterApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="shopper_register",
        request=ShopperRegisterInputSerializer,
        responses={201: ShopperRegisteredOutputSerializer},
        tags=["shoppers"],
    )
    def post(self, request):
        serializer = ShopperRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shopper, token = shopper_register(**serializer.validated_data)
        shopper.token = token
        return Response(ShopperRegisteredOutputSerializer(shopper).data, status=status.HTTP_201_CREATED)


class ShopperMeApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(operation_id="shopper_me", responses=ShopperOutputSerializer, tags=["shoppers"])
    def get(self, request):
        return Response(ShopperOutputSerializer(request.shopper).data)

    @extend_schema(
        operation_id="shopper_delete",
        description="Erase this shopper: photos (also pending uploads), scans, carts, the token. Orders and "
        "ad-campaign attributions stay for accounting, no longer linked to the shopper. The token stops working.",
        responses={204: None},
        tags=["shoppers"],
    )
    def delete(self, request):
        shopper_delete(shopper=request.shopper)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShopperExportApi(APIView):
    """All the data stored about the calling shopper, as a JSON file."""

    permission_classes = (IsShopper,)
    renderer_classes = (JSONRenderer,)

    @extend_schema(operation_id="shopper_export", responses={200: dict}, tags=["shoppers"])
    def get(self, request):
        data = shopper_export(
            shopper=request.shopper, photo_url=lambda scan: scan_photo_url(request, scan)
        )
        response = Response(data)
        response["Content-Disposition"] = f'attachment; filename="shopper-{request.shopper.id}.json"'
        response["Cache-Control"] = "no-store"
        return response
