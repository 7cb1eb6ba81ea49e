from django.urls import path

from shop.campaigns.apis import CampaignRoiReportApi, TrendReportApi

urlpatterns = [
    path("campaigns/roi/", CampaignRoiReportApi.as_view(), name="report-campaign-roi"),
    path("trends/", TrendReportApi.as_view(), name="report-trends"),
]
