from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.shoppers.permissions import IsShopper
from shop.shoppers.serializers import (
    ShopperOutputSerializer,
    ShopperRegisteredOutputSerializer,
    ShopperRegisterInputSerializer,
)
from shop.shoppers.services import shopper_register


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
