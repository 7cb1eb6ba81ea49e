"""System checks (`manage.py check`, run before `migrate`, `runserver` and the workers start)."""

from django.core.checks import Error, Tags, register

from shop.carts.payments import payment_provider, provider_path

NEEDED = ("charge", "find_charge", "refund")  # checkout, its reconciliation, cancelling


@register(Tags.compatibility)
def payment_provider_check(app_configs, **kwargs):
    """A provider without `find_charge` would leave every order whose checkout stopped pending, with its
    stock held and its cart locked; one without `refund` could not cancel a paid order."""
    try:
        provider = payment_provider()
    except Exception as exc:  # a wrong dotted path, a provider that cannot start
        return [Error(f"PAYMENT_PROVIDER {provider_path()!r} cannot be loaded: {exc}", id="carts.E001")]
    missing = [name for name in NEEDED if not callable(getattr(provider, name, None))]
    if missing:
        return [Error(f"PAYMENT_PROVIDER {provider_path()!r} lacks {', '.join(missing)}",
                      hint="A payment provider implements shop.carts.payments.PaymentProvider: "
                           + ", ".join(NEEDED) + ".", id="carts.E002")]
    return []
