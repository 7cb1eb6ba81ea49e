import logging
import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from rest_framework.authtoken.models import Token

from shop.core.services import files_delete_after_commit
from shop.shoppers.models import Shopper

logger = logging.getLogger(__name__)


def _locale_region(locale: str) -> str:
    """The region subtag of a BCP 47 (`zh-Hant-TW`) or underscored (`en_GB`) locale: two letters or
    three digits after the language and an optional script; none in `zh-Hant` or `en`. The last
    subtag was taken before: `HANT` and `POSIX` (of `en-US-POSIX`) were regions in the trends report."""
    subtags = locale.replace("_", "-").split("-")[1:]
    if subtags and len(subtags[0]) == 4 and subtags[0].isalpha():
        subtags = subtags[1:]  # the script
    if subtags and ((len(subtags[0]) == 2 and subtags[0].isalpha()) or (len(subtags[0]) == 3 and subtags[0].isdigit())):
        return subtags[0]
    return ""


@transaction.atomic
def shopper_register(*, platform: str, app_version: str = "", locale: str = "", region: str = "") -> tuple[Shopper, str]:
    """Create an anonymous shopper and the API token the device will send from now on."""
    if not region:
        region = _locale_region(locale)
    user = get_user_model().objects.create_user(username=f"shopper-{Token.generate_key()[:20]}")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    shopper = Shopper.objects.create(
        user=user, platform=platform, app_version=app_version, locale=locale, region=region.upper()
    )
    token = Token.objects.create(user=user)
    return shopper, token.key


# Orders outlive the shopper who placed them (accounting and the ROI report): a deleted shopper's
# orders move to this one row, which stands for "a shopper who deleted their data".
DELETED_SHOPPER_ID = uuid.UUID("00000000-0000-0000-0000-00000000dead")
DELETED_SHOPPER_USERNAME = "deleted-shopper"


def shopper_tombstone_get_or_create() -> Shopper:
    """The installation's "deleted shopper": no token, an inactive user without a password."""
    shopper = Shopper.objects.filter(id=DELETED_SHOPPER_ID).first()
    if shopper is not None:
        return shopper
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(
            username=DELETED_SHOPPER_USERNAME, defaults={"is_active": False, "password": make_password(None)}
        )
        shopper, _ = Shopper.objects.get_or_create(
            id=DELETED_SHOPPER_ID, defaults={"user": user, "platform": Shopper.Platform.WEB}
        )
    return shopper


def shopper_delete(*, shopper: Shopper) -> None:
    """Erase a shopper: photos, scans, carts, cart events, the token, the user and the profile.

    Kept, without the link to the person: orders and their lines and campaign attributions (moved to
    the "deleted shopper"), and each ad scan's attribution (campaign, creative, time) with a bare scan
    row — `ScanAttribution.scan` cascades, so deleting those scans would rewrite the ROI report's scan
    counts. The attribution's `shopper` becomes NULL; the bare scan (no photo, items or filters) is
    moved to the "deleted shopper", and add-to-cart events from it stay there too, for the funnel.
    Database changes are one transaction; files are deleted only once it has committed.
    """
    tombstone = shopper_tombstone_get_or_create()
    if shopper.id == tombstone.id:
        raise ValueError("the deleted-shopper row is not a person")
    for attempt in range(1, ERASE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _erase(shopper, tombstone)
            return
        except (IntegrityError, OperationalError) as exc:
            if attempt == ERASE_ATTEMPTS or not _raced(exc):
                raise
            logger.warning("shopper erasure raced with a write of the shopper's; erasing again",
                           extra={"shopper_id": str(shopper.id), "attempt": attempt, "error": str(exc)})


ERASE_ATTEMPTS = 3
FOREIGN_KEY_VIOLATION, DEADLOCK_DETECTED = "23503", "40P01"


def _raced(exc: Exception) -> bool:
    """A write of the shopper's that committed while the erasure ran: a row that references the
    shopper, found at commit (a scan posted, an item added to a cart, an order placed), or a deadlock
    with such a write. Erasing again sees it."""
    return isinstance(exc, ProtectedError) or getattr(exc.__cause__, "sqlstate", None) in {
        FOREIGN_KEY_VIOLATION, DEADLOCK_DETECTED}


def _erase(shopper: Shopper, tombstone: Shopper) -> None:
    from shop.campaigns.models import ScanAttribution
    from shop.carts.models import CartEvent, Order
    from shop.scans.models import Scan, ScanItem
    from shop.scans.uploads import shopper_prefix

    # No-key locks (the shopper's, its scans'): a worker finishing one of its scans locks that scan
    # and this waits for it (an ad scan attributed meanwhile is kept; one matched later finds its scan
    # gone), while writes that only reference these rows (a worker's attribution, a cart line of a
    # scan) go on instead of deadlocking with this; one that commits a row this no longer sees makes
    # the commit fail, and `shopper_delete` erases again.
    shopper = Shopper.objects.select_for_update(no_key=True).filter(id=shopper.id).first()
    if shopper is None:  # erased meanwhile (a second tap on "delete my data", staff at the same time): done
        return
    scans = Scan.objects.select_for_update(no_key=True).filter(shopper=shopper).order_by("id")
    photos = [name for name in scans.values_list("photo", flat=True) if name]

    attributed = list(ScanAttribution.objects.filter(scan__shopper=shopper).values_list("scan_id", flat=True))
    # Finished ad scans, recognised or not, stay as bare rows too: the ROI report's recognition rate
    # counts them (deleting the unrecognised ones raised a past day's rate).
    kept = {*attributed, *scans.filter(kind=Scan.Kind.AD, status=Scan.Status.DONE).values_list("id", flat=True)}
    ScanItem.objects.filter(scan_id__in=kept).delete()  # their matches go with them
    Scan.objects.filter(id__in=kept).update(
        shopper=tombstone, photo="", photo_sha256="", photo_deleted_at=timezone.now(), filters={}, failure_reason=""
    )
    erasure = uuid.uuid4()  # one key per erasure, linked to no one
    ScanAttribution.objects.filter(Q(shopper=shopper) | Q(scan_id__in=attributed)).update(
        shopper=None, erased_shopper=erasure)
    CartEvent.objects.filter(shopper=shopper, scan_id__in=attributed).update(shopper=tombstone)
    # An order not paid yet is attributed once it is (order_settle): through the erasure's key.
    Order.objects.filter(shopper=shopper, status=Order.Status.PENDING_PAYMENT).update(erased_shopper=erasure)
    Order.objects.filter(shopper=shopper).update(shopper=tombstone)

    # The user's deletion cascades to its token, idempotency records and the shopper, whose
    # deletion cascades to the remaining scans (items, matches), carts (lines) and cart events.
    prefixes = [f"scans/{shopper.id}/", shopper_prefix(shopper)]
    shopper.user.delete()
    # Recorded in this transaction, deleted by a worker after it commits, and again by beat's sweep
    # while the storage does not delete them (down, slow): the request never waits for the storage.
    files_delete_after_commit(names=photos, prefixes=prefixes)
