from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import ImageEmbedding, Product
from catalog.search import search_by_vector
from catalog.selectors import SearchFilters, active_model_key
from catalog.serializers import ProductHitSerializer


class SimilarProductsApi(APIView):
    """More like this: the products nearest to a product's pictures (active model)."""

    class QuerySerializer(serializers.Serializer):
        k = serializers.IntegerField(min_value=1, max_value=50, default=12)

    @extend_schema(
        operation_id="product_similar",
        parameters=[OpenApiParameter("k", int, description="how many products (1-50)")],
        responses=ProductHitSerializer(many=True),
        tags=["products"],
    )
    def get(self, request, product_id: int):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        product = get_object_or_404(Product, pk=product_id, active=True)
        key = active_model_key()
        vectors = list(
            ImageEmbedding.objects.filter(image__product=product, model_key=key)
            .order_by("-image__is_primary", "image__position")
            .values_list("embedding", flat=True)[:1]
        )
        if not vectors:
            return Response({"model_key": key, "results": [], "detail": "This product has no vector yet."})
        hits = search_by_vector(
            vector=vectors[0],
            model_key=key,
            k=query.validated_data["k"],
            filters=SearchFilters(exclude_product_ids=[product.id]),
        )
        data = ProductHitSerializer(hits, many=True, context={"request": request}).data
        return Response({"model_key": key, "results": data})
