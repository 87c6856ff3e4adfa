"""The layers of DESIGN.md hold: the import-linter contracts in pyproject.toml, and what they leave out.

import-linter (grimp) counts every import, those inside functions too; the first two tests run
the contracts and show that a function-level import is in the graph they check. The contracts
let interface modules (api, admin, tasks, commands, urls, ...) import anything below them, so the
last two check that domain code does not reach up through one: a service may import its own
app's tasks, and tasks import their service only inside the task body.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
PACKAGES: list[str] = CONFIG["root_packages"]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def interface_modules(graph: grimp.ImportGraph) -> set[str]:
    """The modules the layers contract lets import anything (its ``X -> **`` ignore lines)."""
    (layers,) = [c for c in CONFIG["contracts"] if c["id"] == "layers"]
    modules: set[str] = set()
    for line in layers["ignore_imports"]:
        importer, imported = (part.strip() for part in line.split("->"))
        if imported == "**":
            modules |= graph.find_matching_modules(importer)
    return modules


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_see_imports_inside_functions(graph: grimp.ImportGraph) -> None:
    # orders.tasks imports orders.services only inside its task bodies (see the last test).
    details = graph.get_import_details(importer="orders.tasks", imported="orders.services")
    assert details, "grimp no longer reports imports inside functions: the layer contracts would miss them"


def test_domain_code_imports_no_interface_module_but_its_own_tasks(graph: grimp.ImportGraph) -> None:
    interface = interface_modules(graph)
    assert {"orders.api", "orders.admin", "orders.tasks", "trading.urls"} <= interface
    wrong = []
    for importer in sorted(graph.modules - interface):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & interface):
            app = importer.split(".")[0]
            is_service = importer == f"{app}.services" or importer.startswith(f"{app}.services.")
            if is_service and imported == f"{app}.tasks":
                continue
            wrong.append(f"{importer} -> {imported}")
    assert not wrong, "domain code imports an interface module:\n" + "\n".join(wrong)
    # A service's tasks stay in the service's app, so enqueueing is no way up the layers.
    for app in PACKAGES:
        importers = graph.find_modules_that_directly_import(f"{app}.tasks") if f"{app}.tasks" in graph.modules else set()
        if any(m == f"{app}.services" or m.startswith(f"{app}.services.") for m in importers):
            outside = {m for m in graph.find_modules_directly_imported_by(f"{app}.tasks") if m.split(".")[0] != app}
            assert not outside, f"{app}.tasks, which {app}.services imports, imports {sorted(outside)}"


def test_tasks_import_project_code_only_inside_task_bodies() -> None:
    wrong = []
    for package in PACKAGES:
        path = ROOT / package / "tasks.py"
        if not path.exists():
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{package}/tasks.py:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0] in PACKAGES]
    assert not wrong, "tasks import their service inside the task body, not at module level:\n" + "\n".join(wrong)


LONG_MODULE_LINES = 500


def test_a_module_over_500_lines_says_at_its_top_why_it_is_one_module() -> None:
    """Issue 9: no module over about 500 lines without a reason written at its top. The reason is
    a sentence of its docstring starting "Why one module"."""
    unexplained = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text(encoding="utf-8")
            if source.count("\n") <= LONG_MODULE_LINES:
                continue
            docstring = ast.get_docstring(ast.parse(source)) or ""
            if "Why one module" not in docstring and not docstring.startswith("Generated by"):
                unexplained.append(f"{path.relative_to(ROOT)} ({source.count(chr(10))} lines)")
    assert not unexplained, "modules over 500 lines without 'Why one module ...' in their docstring: " + ", ".join(unexplained)
