"""Django code reaches vision/ through shop.vision_adapter alone, and loads its heavy parts lazily."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from shop import vision_adapter

ROOT = Path(__file__).resolve().parents[2]


def vision_imports(path: Path) -> list[str]:
    """The `vision` modules a file imports (at any depth: inside functions too, or by importlib)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "vision"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "vision":
            found.append(node.module)
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args
              and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).split(".")[0] == "vision"):
            found.append(node.args[0].value)
    return found


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


def test_every_name_django_code_takes_from_the_adapter_exists():
    """Each `from shop.vision_adapter import X` of shop/ and catalog/ (most inside functions, which
    would fail only when they run) names something the adapter has or re-exports."""
    taken = {
        (str(path.relative_to(ROOT)), alias.name)
        for path in DJANGO_CODE
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "shop.vision_adapter"
        for alias in node.names
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
