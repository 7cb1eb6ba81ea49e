import csv
import functools
import http.server
import json
import threading

import pytest
from django.core.management import call_command

from catalog.fetch import FetchError, FetchPolicy, fetch_url
from catalog.importing import catalog_import, read_rows
from catalog.models import Category, Product, ProductImage, Variant
from tests.catalog.factories import picture_bytes

HEADER = ["handle", "title", "category", "brand", "sku", "price", "currency", "stock", "size", "color", "images"]


@pytest.fixture
def picture_server(tmp_path):
    """A loopback HTTP server with pictures (the only network a test may use)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "green.jpg").write_bytes(picture_bytes(color="green"))
    (root / "big.jpg").write_bytes(b"\xff\xd8" + b"0" * 300_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HEADER)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in HEADER})


def test_csv_import_reports_bad_rows_and_imports_the_rest(db, tmp_path, picture_server, capsys):
    (tmp_path / "red.jpg").write_bytes(picture_bytes(color="red"))
    (tmp_path / "note.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    rows = [
        # one product with two variants, a local picture and a picture by URL
        {"handle": "tee", "title": "Red tee", "category": "Men > T-shirts", "brand": "Kestrel", "sku": "TEE-M",
         "price": "19.90", "stock": "3", "size": "M", "color": "red", "images": f"red.jpg|{picture_server}/green.jpg"},
        {"handle": "tee", "sku": "TEE-L", "price": "19.90", "stock": "0", "size": "L", "color": "red"},
        {"handle": "bad-price", "title": "x", "category": "Men", "sku": "BP-1", "price": "twelve"},
        {"handle": "no-title", "category": "Men", "sku": "NT-1", "price": "5"},
        {"handle": "svg", "title": "Vector art", "category": "Art", "sku": "SVG-1", "price": "5", "images": "note.svg"},
        {"handle": "escape", "title": "Sneaky", "category": "Art", "sku": "ESC-1", "price": "5",
         "images": "../../etc/passwd"},
        {"handle": "ftp", "title": "Old", "category": "Art", "sku": "FTP-1", "price": "5",
         "images": "ftp://127.0.0.1/x.jpg"},
        {"handle": "neg", "title": "Negative", "category": "Art", "sku": "NEG-1", "price": "5", "stock": "-2"},
        {"handle": "scarf", "title": "Blue scarf", "category": "Accessories > Scarves", "sku": "SC-1",
         "price": "25", "currency": "usd"},
    ]  # fmt: skip
    path = tmp_path / "catalog.csv"
    _write_csv(path, rows)
    with pytest.MonkeyPatch.context() as mp:
        from django.conf import settings

        mp.setattr(settings, "IMPORT_URL_ALLOW_PRIVATE", True)  # the picture server is on loopback
        call_command("import_catalog", str(path), "--report", str(tmp_path / "report.json"))
    out = capsys.readouterr()
    report = json.loads((tmp_path / "report.json").read_text())
    errors = {error["row"]: error for error in report["errors"]}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]
    assert errors[3]["field"] == "price"
    assert errors[4]["field"] == "title"
    assert errors[5]["field"] == "images" and "unsupported_format" in errors[5]["error"]
    assert "outside the images directory" in errors[6]["error"]
    assert "scheme 'ftp' not allowed" in errors[7]["error"]
    assert errors[8]["field"] == "stock"
    assert "row 3: price" in out.err
    assert "3/9 rows imported" in out.out

    tee = Product.objects.get(handle="tee")
    assert str(tee.category) == "Men > T-shirts" and tee.brand.name == "Kestrel"
    assert sorted(tee.variants.values_list("sku", "stock")) == [("TEE-L", 0), ("TEE-M", 3)]
    assert tee.images.count() == 2 and tee.images.filter(is_primary=True).count() == 1
    assert all(image.index_state == ProductImage.IndexState.PENDING for image in tee.images.all())
    assert Variant.objects.get(sku="SC-1").currency == "USD"
    # The failed rows left nothing behind.
    assert not Product.objects.filter(handle__in=["bad-price", "no-title", "svg", "escape", "ftp", "neg"]).exists()
    assert Category.objects.filter(name="Art").count() == 0


def test_reimporting_the_same_file_updates_instead_of_duplicating(db, tmp_path):
    (tmp_path / "red.jpg").write_bytes(picture_bytes(color="red"))
    rows = [{"handle": "tee", "title": "Red tee", "category": "Tops", "sku": "T-1", "price": "10", "images": "red.jpg"}]
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"products": rows}))
    first = catalog_import(rows=read_rows(path), base_dir=tmp_path)
    rows[0]["price"] = "12"
    path.write_text(json.dumps(rows))
    second = catalog_import(rows=read_rows(path), base_dir=tmp_path)
    assert (first.products_created, second.products_updated) == (1, 1)
    assert Product.objects.count() == 1 and ProductImage.objects.count() == 1
    assert str(Variant.objects.get().price) == "12.00"


def test_url_fetching_refuses_private_addresses_and_large_bodies(picture_server):
    with pytest.raises(FetchError, match="non-public address"):
        fetch_url(f"{picture_server}/green.jpg", policy=FetchPolicy())
    allowed = FetchPolicy(allow_private=True, max_bytes=200_000)
    assert fetch_url(f"{picture_server}/green.jpg", policy=allowed)[:2] == b"\xff\xd8"
    with pytest.raises(FetchError, match="larger than"):
        fetch_url(f"{picture_server}/big.jpg", policy=allowed)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(f"{picture_server}/missing.jpg", policy=allowed)
    with pytest.raises(FetchError, match="scheme 'file'"):
        fetch_url("file:///etc/passwd", policy=allowed)


def test_url_fetching_connects_to_the_address_it_checked(picture_server, monkeypatch):
    """DNS rebinding: a name that resolves to a public address for the check and to the loopback for
    the request. The request goes to the address checked (here unreachable), never to the loopback."""
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(picture_server).port
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host != "pictures.example":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(FetchError, match="request failed"):
        fetch_url(f"http://pictures.example:{port}/green.jpg", policy=FetchPolicy(timeout=0.5))
    assert lookups == ["pictures.example"]  # resolved once
    # the same name resolving to the loopback is refused before any request, and allowed by the policy
    # it connects there, naming the host it asked for
    lookups.append("again")
    with pytest.raises(FetchError, match="non-public address"):
        fetch_url(f"http://pictures.example:{port}/green.jpg", policy=FetchPolicy())
    assert fetch_url(f"http://pictures.example:{port}/green.jpg",
                     policy=FetchPolicy(allow_private=True))[:2] == b"\xff\xd8"


def test_url_fetching_is_bounded_in_total_time_and_refuses_bad_urls():
    """A server sending its body or its headers a little now and then (each read within its timeout)
    does not hold the import."""
    import http.server
    import time as clock

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                clock.sleep(0.1)

        def log_message(self, *args):
            pass

    class DripHeaders(Drip):
        def do_GET(self):  # headers a byte at a time: urllib3 reads them with the per-read timeout only
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(1000):
                self.wfile.write(b"X-Padding: x\r\n")
                self.wfile.flush()
                clock.sleep(0.1)

    for handler in (Drip, DripHeaders):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            started = clock.monotonic()
            with pytest.raises(FetchError, match="took longer than"):
                fetch_url(f"http://127.0.0.1:{server.server_address[1]}/slow.jpg",
                          policy=FetchPolicy(allow_private=True, timeout=2, total_timeout=1))
            assert clock.monotonic() - started < 3, handler.__name__
        finally:
            server.shutdown()
    with pytest.raises(FetchError, match="not a valid URL"):
        fetch_url("http://example.com:99999/x.jpg", policy=FetchPolicy())
    with pytest.raises(FetchError, match="not a valid host name"):
        fetch_url(f"http://{'a' * 64}.example/x.jpg", policy=FetchPolicy())


def test_url_fetching_spells_international_hosts_as_dns_does_and_tries_each_address(picture_server, monkeypatch):
    """An IDN host is resolved and named as `xn--...`; an address that refuses the connection is
    followed by the host's next one."""
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(picture_server).port
    real = socket.getaddrinfo
    asked = []

    def two_addresses(host, *args, **kwargs):
        if not host.endswith(".example"):
            return real(host, *args, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                for address in ("127.0.0.2", "127.0.0.1")]  # nothing listens on the first

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    picture = fetch_url(f"http://магазин.example:{port}/green.jpg", policy=FetchPolicy(allow_private=True))
    assert picture[:2] == b"\xff\xd8" and asked == ["xn--80aairftm.example"]


def test_importing_again_changes_only_what_the_rows_give(db, tmp_path):
    """A price list (handle, title, category, sku, price) imported over the catalog keeps the
    descriptions, brands, stock, currencies and options, and leaves a deactivated product off."""
    full = [{"handle": "coat", "title": "Wool coat", "description": "Double-breasted, 80 % wool", "brand": "Kestrel",
             "category": "Women > Coats", "attributes": {"material": "wool"}, "sku": "COAT-M", "price": "189",
             "currency": "GBP", "stock": "5", "size": "M", "color": "camel"}]
    catalog_import(rows=full)
    Product.objects.filter(handle="coat").update(active=False)  # recalled, in admin
    path = tmp_path / "prices.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["handle", "title", "category", "sku", "price", "stock"])
        writer.writeheader()
        writer.writerow({"handle": "coat", "title": "Wool coat", "category": "Women > Coats", "sku": "COAT-M",
                         "price": "169", "stock": ""})
    report = catalog_import(rows=read_rows(path))
    assert (report.products_updated, report.errors) == (1, [])
    coat = Product.objects.get(handle="coat")
    assert (coat.description, coat.brand.name, coat.attributes, coat.active) == (
        "Double-breasted, 80 % wool", "Kestrel", {"material": "wool"}, False)
    variant = coat.variants.get()
    assert (str(variant.price), variant.currency, variant.stock, variant.options) == (
        "169.00", "GBP", 5, {"size": "M", "color": "camel"})


def test_rows_the_database_would_refuse_are_reported_and_the_rest_imported(db):
    """Names that fold into one slug, numbers that are not numbers, a category name too long: each
    is that row's error (or a second name for the same slug), never the end of the import."""
    rows = [
        {"handle": "jeans", "title": "Jeans", "category": "Women > Trousers", "brand": "Levi's", "sku": "J-1",
         "price": "79"},
        {"handle": "jeans-2", "title": "Jeans 2", "category": "women > trousers", "brand": "Levis", "sku": "J-2",
         "price": "79"},
        {"handle": "nan", "title": "x", "category": "Women", "sku": "N-1", "price": "NaN"},
        {"handle": "inf", "title": "x", "category": "Women", "sku": "I-1", "price": "Infinity"},
        {"handle": "square", "title": "x", "category": "Women", "sku": "S-1", "price": "5", "stock": "²"},
        {"handle": "many", "title": "x", "category": "Women", "sku": "M-1", "price": "5", "stock": "99999999999"},
        {"handle": "long", "title": "x", "category": "Women > " + "y" * 101, "sku": "L-1", "price": "5"},
        {"handle": "port", "title": "x", "category": "Women", "sku": "P-1", "price": "5",
         "images": "http://example.com:99999/x.jpg"},
        {"handle": "last", "title": "Last", "category": "Women", "sku": "Z-1", "price": "5"},
    ]
    report = catalog_import(rows=rows)
    assert report.rows == 9 and sorted(error["row"] for error in report.errors) == [3, 4, 5, 6, 7, 8], report.errors
    assert {e["row"]: e["field"] for e in report.errors if e["row"] < 8} == {
        3: "price", 4: "price", 5: "stock", 6: "stock", 7: "category"}
    first, second = Product.objects.get(handle="jeans"), Product.objects.get(handle="jeans-2")
    assert first.category_id == second.category_id  # "women > trousers" is "Women > Trousers"
    assert {first.brand.slug, second.brand.slug} == {"levis", "levis-2"}
    assert Product.objects.filter(handle="last").exists()


def test_products_imported_before_handles_kept_accents_are_updated_not_duplicated(db):
    """Before, `JUPE-ÉTÉ-01` was stored as `jupe-ete-01` and long handles were cut to 100 characters:
    importing the same file again updates those products."""
    catalog_import(rows=[{"handle": "x", "title": "Jupe", "category": "Jupes", "sku": "J-1", "price": "40"}])
    Product.objects.filter(handle="x").update(handle="jupe-ete-01")
    long = "a" * 120
    catalog_import(rows=[{"handle": "y", "title": "Long", "category": "Jupes", "sku": "L-1", "price": "9"}])
    Product.objects.filter(handle="y").update(handle=long[:100])
    report = catalog_import(rows=[
        {"handle": "JUPE-ÉTÉ-01", "title": "Jupe d'été", "category": "Jupes", "sku": "J-1", "price": "35"},
        {"handle": long, "title": "Long again", "category": "Jupes", "sku": "L-1", "price": "8"}])
    assert (report.errors, report.products_created, report.products_updated) == ([], 0, 2)
    assert Product.objects.get(handle="jupe-ete-01").title == "Jupe d'été"
    assert Product.objects.get(handle=long[:100]).title == "Long again" and Product.objects.count() == 2


def test_handles_in_any_script_stay_apart_and_one_without_letters_is_refused(db):
    rows = [{"handle": "платье-красное", "title": "Красное платье", "category": "Платья", "sku": "D-1", "price": "50"},
            {"handle": "платье-синее", "title": "Синее платье", "category": "Платья", "sku": "D-2", "price": "50"},
            {"handle": "★", "title": "Star", "category": "Платья", "sku": "D-3", "price": "50"}]
    report = catalog_import(rows=rows)
    assert [(e["row"], e["field"]) for e in report.errors] == [(3, "handle")]
    assert sorted(Product.objects.values_list("title", flat=True)) == ["Красное платье", "Синее платье"]


def test_two_handles_that_fold_into_one_are_refused_not_merged(db):
    """`TEE/M` and `TEE.M` both make the handle `teem`: the second row is refused, not written over the
    first row's product. The same handle in another case, and rows of one product, are one product."""
    rows = [{"handle": "TEE.M", "title": "Tee, medium", "category": "Tops", "sku": "T-M", "price": "10"},
            {"handle": "TEE/M", "title": "Tee, size M, other cut", "category": "Tops", "sku": "T-M2", "price": "12"},
            {"handle": "tee.m", "title": "Tee, medium", "category": "Tops", "sku": "T-M-RED", "price": "10",
             "color": "red"}]
    report = catalog_import(rows=rows)
    assert [(e["row"], e["field"]) for e in report.errors] == [(2, "handle")]
    assert "row 1" in report.errors[0]["error"]
    product = Product.objects.get()
    assert product.title == "Tee, medium" and sorted(product.variants.values_list("sku", flat=True)) == ["T-M", "T-M-RED"]


def test_an_accented_handle_does_not_write_over_another_product_whose_handle_has_no_accent(db):
    """`robe-rosé` was looked up as `robe-rose` too (for products imported before handles kept
    accents), so it wrote over the product `robe-rose`, a different dress, and took its variant."""
    catalog_import(rows=[{"handle": "robe-rose", "title": "Robe rose", "category": "Robes", "sku": "RR-1",
                          "price": "50"}])
    report = catalog_import(rows=[{"handle": "robe-rosé", "title": "Robe rosé", "category": "Robes",
                                   "sku": "RRE-1", "price": "65"}])
    assert [(e["row"], e["field"]) for e in report.errors] == [(1, "handle")]
    assert "use the handle 'robe-rose' to update it, or another handle" in report.errors[0]["error"]
    dress = Product.objects.get()
    assert (dress.handle, dress.title) == ("robe-rose", "Robe rose")
    assert list(dress.variants.values_list("sku", flat=True)) == ["RR-1"]
    assert not Variant.objects.filter(sku="RRE-1").exists()


def test_a_sku_of_another_product_is_that_rows_error_not_moved(db):
    """A SKU copied onto another product's row moved the variant: the first product kept its pictures,
    stayed in search, and showed no price."""
    catalog_import(rows=[{"handle": "tee", "title": "Tee", "category": "Tops", "sku": "T-1", "price": "10"}])
    report = catalog_import(rows=[{"handle": "polo", "title": "Polo", "category": "Tops", "sku": "T-1",
                                   "price": "30"}])
    assert [(e["row"], e["field"]) for e in report.errors] == [(1, "sku")]
    assert "'T-1' is a variant of the product 'tee'" in report.errors[0]["error"]
    assert not Product.objects.filter(handle="polo").exists()
    variant = Variant.objects.get(sku="T-1")
    assert (variant.product.handle, str(variant.price)) == ("tee", "10.00")


def test_a_csv_with_an_unbalanced_quote_is_refused_naming_its_line(db, tmp_path):
    """The csv module read the rest of the file into one cell: the rows after it were gone while the
    report counted every row imported."""
    path = tmp_path / "catalog.csv"
    path.write_text('handle,title,category,sku,price\n'
                    'tee,Tee,Tops,T-1,10\n'
                    'polo,"Polo, navy,Tops,P-1,30\n'
                    'cap,Cap,Hats,C-1,15\n', encoding="utf-8")
    with pytest.raises(Exception) as refused:
        call_command("import_catalog", str(path))
    assert type(refused.value).__name__ == "CommandError"
    assert "line" in str(refused.value) and "quote" in str(refused.value)
    assert not Product.objects.exists()


def test_a_json_object_without_a_products_list_is_refused(db, tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"items": [{"handle": "tee", "sku": "T-1"}]}), encoding="utf-8")
    with pytest.raises(Exception) as refused:
        call_command("import_catalog", str(path))
    assert "'products' list" in str(refused.value)


def test_a_reimport_fetches_no_picture_again_and_a_picture_gone_keeps_no_price_back(
        db, tmp_path, picture_server, settings, django_capture_on_commit_callbacks):
    """Every picture URL was downloaded again on each import of the full catalog, and one taken off
    the server made its row an error: the row's new price was not applied."""
    from django.core.files.storage import default_storage

    settings.IMPORT_URL_ALLOW_PRIVATE = True
    root = tmp_path / "www"
    row = {"handle": "tee", "title": "Tee", "category": "Tops", "sku": "T-1", "price": "10",
           "images": f"{picture_server}/green.jpg"}
    assert catalog_import(rows=[row], policy=FetchPolicy(allow_private=True)).errors == []
    (root / "green.jpg").unlink()  # the CDN dropped it
    report = catalog_import(rows=[{**row, "price": "12"}], policy=FetchPolicy(allow_private=True))
    assert report.errors == [] and report.images == 0
    assert str(Variant.objects.get(sku="T-1").price) == "12.00"
    assert ProductImage.objects.count() == 1

    # A row refused after one of its pictures was stored leaves no file behind.
    def stored() -> set:
        return set(default_storage.listdir("products")[1])

    (root / "red.jpg").write_bytes(picture_bytes(color="red"))
    before = stored()
    bad = {"handle": "cap", "title": "Cap", "category": "Hats", "sku": "C-1", "price": "5",
           "images": f"{picture_server}/red.jpg|{picture_server}/missing.jpg"}
    with django_capture_on_commit_callbacks(execute=True):
        report = catalog_import(rows=[bad], policy=FetchPolicy(allow_private=True))
    assert [e["field"] for e in report.errors] == ["images"]
    assert stored() == before
