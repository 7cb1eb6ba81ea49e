from rest_framework import serializers

from shop.shoppers.models import Shopper


class ShopperRegisterInputSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Shopper.Platform.choices)
    app_version = serializers.RegexField(r"^[0-9A-Za-z.+-]{1,32}$", required=False, default="")
    locale = serializers.RegexField(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$", max_length=16, required=False, default="")
    region = serializers.RegexField(
        r"^[A-Za-z0-9-]{2,8}$", required=False, default="", help_text="e.g. GB; taken from the locale when absent"
    )


class ShopperOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Shopper
        fields = ("id", "platform", "app_version", "locale", "region", "created_at")


class ShopperRegisteredOutputSerializer(ShopperOutputSerializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>` on every shopper request.")

    class Meta(ShopperOutputSerializer.Meta):
        fields = (*ShopperOutputSerializer.Meta.fields, "token")
