"""The runtime library imports no service and no development tooling, and no service
imports the development tooling: devtools sits on top of both, never under them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
SERVICES = ("intake", "notifier", "followup", "audit", "console")


def imported_packages(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_shared_imports_no_service_and_no_devtools():
    sources = sorted(ROOT.glob("shared/src/shared/**/*.py"))
    assert sources
    for source in sources:
        wrong = imported_packages(source) & {*SERVICES, "devtools"}
        assert not wrong, f"{source.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_imports_devtools(service):
    sources = sorted(ROOT.glob(f"services/{service}/src/{service}/**/*.py"))
    assert sources
    for source in sources:
        assert "devtools" not in imported_packages(source), source.relative_to(ROOT)
