import pytest


@pytest.mark.django_db
def test_a_device_registers_and_uses_its_token(api_client):
    response = api_client.post("/api/v1/shoppers/", {"platform": "ios", "app_version": "2.3.1"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["platform"] == "ios" and len(body["token"]) == 40

    assert api_client.get("/api/v1/shoppers/me").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    me = api_client.get("/api/v1/shoppers/me")
    assert me.status_code == 200
    assert me.json()["id"] == body["id"]
    assert "token" not in me.json()


@pytest.mark.django_db
def test_a_wrong_token_is_rejected(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = api_client.get("/api/v1/shoppers/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.django_db
def test_a_shopper_cannot_log_in_to_admin(client, shopper_client):
    user = shopper_client.shopper.user
    assert not user.has_usable_password()
    assert not user.is_staff


@pytest.mark.django_db
@pytest.mark.parametrize("locale, region", [
    ("fr-FR", "FR"), ("en_GB", "GB"), ("zh-Hant-TW", "TW"), ("es-419", "419"),
    ("zh-Hant", ""), ("en-US-POSIX", "US"), ("de", ""), ("sr-Latn", ""),
])
def test_the_region_is_the_locales_region_subtag_not_its_last_one(api_client, locale, region):
    """`zh-Hant` gave the region HANT and `en-US-POSIX` POSIX: the trends report counted them as regions."""
    body = api_client.post("/api/v1/shoppers/", {"platform": "ios", "locale": locale}, format="json").json()
    from shop.shoppers.models import Shopper

    assert Shopper.objects.get(id=body["id"]).region == region
