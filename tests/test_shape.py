"The package's shape: no module imports the package it is part of, and each version stamp reads the one version."
import ast
from pathlib import Path

import mapd
from mapd.core import mapd_version

PKG = Path(mapd.__file__).parent

def _package_imports(f: Path) -> list[str]:
    "The lines of `f` that import the package itself (`import mapd`, `from mapd import X`, `from . import X` at the top level)."
    out = []
    for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "mapd" for a in node.names): out.append(f"{f.name}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and (node.module == "mapd" or node.module is None and node.level == (2 if f.parent != PKG else 1)):
            out.append(f"{f.name}:{node.lineno}")
    return out

def test_no_module_imports_the_package():
    "No module imports `mapd` itself (the command line included): it would run mapd/__init__.py, which imports the audit, which imports the module."
    found = [hit for f in sorted(PKG.rglob("*.py")) if f.name not in ("__init__.py", "_modidx.py") for hit in _package_imports(f)]
    assert found == [], f"modules that import the package they are part of: {found}"

def test_the_version_is_read_from_one_place():
    assert mapd_version() == mapd.__version__

def test_no_module_links_to_documentation_nothing_builds():
    # nbdev writes "Docs: <url>" into every module's docstring when pyproject names a Documentation site; the project builds none.
    linked = [p.name for p in PKG.rglob("*.py") if "Docs: http" in p.read_text()]
    assert not linked, linked
