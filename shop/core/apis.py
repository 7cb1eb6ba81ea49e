from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.core.problems import PROBLEM_CONTENT_TYPE, problem_body
from shop.core.selectors import readiness


class HealthzApi(APIView):
    """Liveness: the process answers. It checks nothing else, so a slow dependency never restarts pods."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(operation_id="healthz", responses={200: OpenApiTypes.OBJECT}, tags=["health"])
    def get(self, request):
        return Response({"status": "ok"})


class ReadyzApi(APIView):
    """Readiness: database with pgvector, broker, storage and model. 503 problem details when any is down.
    `?scope=web`: only what a web process itself needs (database and model), for a load balancer's probe."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="readyz",
        parameters=[OpenApiParameter("scope", str, enum=["all", "web"], required=False,
                                     description="all (default): every dependency; web: database and model only")],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
        tags=["health"],
    )
    def get(self, request):
        scope = request.query_params.get("scope", "all")
        if scope not in ("all", "web"):
            return Response(problem_body(status=400, code="invalid_scope", detail="scope is all or web.",
                                         instance=request.path), status=400, content_type=PROBLEM_CONTENT_TYPE)
        report = readiness(scope=scope)
        if report["ready"]:
            return Response(report)
        failing = ", ".join(name for name, check in report["checks"].items() if not check["ok"])
        body = problem_body(
            status=503,
            code="dependency_unavailable",
            detail=f"Not ready: {failing} unavailable.",
            instance=request.path,
            **report,
        )
        return Response(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
