"""Django code reaches vision/ through shop.vision_adapter alone, and loads its heavy parts lazily."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from shop import vision_adapter
from tests.source_code import imported_modules, syntax_tree

ROOT = Path(__file__).resolve().parents[2]


def vision_imports(path: Path) -> list[str]:
    return [module for module in imported_modules(path) if module.split(".")[0] == "vision"]


DJANGO_CODE = [ROOT / "manage.py", *(ROOT / "shop").rglob("*.py"), *(ROOT / "catalog").rglob("*.py")]
ADAPTER = ROOT / "shop" / "vision_adapter.py"


def test_django_code_imports_vision_only_in_the_adapter():
    assert len(DJANGO_CODE) > 50
    outside = {
        str(path.relative_to(ROOT)): modules
        for path in DJANGO_CODE
        if path != ADAPTER and (modules := vision_imports(path))
    }
    assert outside == {}
    assert vision_imports(ADAPTER)  # the adapter itself does


def names_taken_from_the_adapter(tree: ast.Module) -> set[str]:
    """`X` of each `from shop.vision_adapter import X` and each `vision_adapter.X`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "shop.vision_adapter":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "vision_adapter":
            names.add(node.attr)
    return names


def test_every_name_django_code_takes_from_the_adapter_exists():
    """Each name shop/ and catalog/ take from the adapter (most of them when a function runs, which
    would fail only then) is something the adapter has or re-exports."""
    taken = {
        (str(path.relative_to(ROOT)), name)
        for path in DJANGO_CODE
        for name in names_taken_from_the_adapter(syntax_tree(path))
    }
    assert len(taken) > 20
    assert [(where, name) for where, name in sorted(taken) if not hasattr(vision_adapter, name)] == []


@pytest.mark.parametrize("name", sorted(vision_adapter._FROM_VISION))
def test_each_reexported_name_is_the_vision_object_itself(name):
    module = importlib.import_module(vision_adapter._FROM_VISION[name])
    assert getattr(vision_adapter, name) is getattr(module, name)


def test_reexported_modules_are_the_modules_and_a_function_named_like_its_module_is_the_function():
    from vision import adgen, detect

    assert vision_adapter.adgen is adgen
    assert vision_adapter.detect is detect.detect and callable(vision_adapter.detect)


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no attribute 'CreativeMatcher'"):
        vision_adapter.CreativeMatcher  # noqa: B018
    with pytest.raises(ImportError):
        exec("from shop.vision_adapter import CreativeMatcher", {})


def test_a_web_process_loads_neither_opencv_nor_faiss_nor_torch_until_a_name_needs_them():
    code = (
        "import sys, django; django.setup(); "
        "import shop.urls, shop.scans.tasks, shop.campaigns.admin, catalog.admin; "
        "from shop.vision_adapter import ImageRejected, encode_clean_jpeg; "
        "heavy = lambda: sorted(m for m in ('cv2', 'faiss', 'torch') if m in sys.modules); "
        "print(heavy()); from shop.vision_adapter import CreativeIndex; print(heavy())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.strip().splitlines()[-2:]
    assert before == "[]"
    assert "'cv2'" in after  # the matcher's module (it loads FAISS when an index is built)
