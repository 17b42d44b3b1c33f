"""The layout rules of ``web/`` and ``cloudmgr/``, checked on their static import graph (issue 15).

The graph is read from the source with :mod:`ast`: every import, at module level or inside a
function, except those under ``if TYPE_CHECKING:``; relative imports resolved.  ``from a.b import
c`` depends on ``a.b.c`` when that is a module and on ``a.b`` otherwise; ``import a.b.c`` depends on
``a.b.c``.  Importing a module also runs its parents' ``__init__``, but that is not counted as a
dependency of the importer (every module of a package would otherwise depend on the package).

The rules:

* no import cycles (a cycle is reported as its strongly connected component);
* ``cloudmgr`` never imports ``web``;
* no audience package of ``web`` (``auth``, ``portal``, ``operations``, ``finance``, ``admin``,
  ``api``) imports another; what two audiences share lives in ``web.common``, which imports no
  audience; ``web.core`` (the app's infrastructure) imports nothing else of ``web``;
* ``web/`` holds only ``__init__.py`` and packages;
* a ratchet: the number of ``web`` modules that reach into a domain package's internals.

Print the graph's figures, its cycles and the web modules that reach into internals with::

    .venv/bin/python -m tests.test_architecture
"""

from __future__ import annotations

import ast
import enum
import importlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("web", "cloudmgr")

AUDIENCES = frozenset({"auth", "portal", "operations", "finance", "admin", "api"})
SHARED = "web.common"
CORE = "web.core"

# Domain packages: the sub-packages of cloudmgr that hold a part of the product (its models,
# rules and jobs).  Top-level modules (cloudmgr.errors, .runtime, .db, .config, .text …) are the
# shared infrastructure every layer uses, not a domain's internals.
NOT_DOMAINS = frozenset({"dbschema"})

# A domain's public face, what web/ may import: the package itself, its ``services`` (every rule),
# its ``errors`` (what the views map to HTTP), its ``states`` (the state enums and their
# transitions) and ``actor`` (organisation's Actor: who acts, the first argument of every
# service).  Also public: an enum imported by name from any module of the domain (Role,
# WaveState …: plain values every layer speaks).  Everything else — the ORM model classes,
# readers of configuration files, importers, the planner's modules, tracking, reports — is an
# internal: a view that needs it should get it from a service.
PUBLIC_MODULES = frozenset({"services", "errors", "states", "actor"})

# The ratchet: web modules that import a domain's internals.  Lower it when you move one behind a
# service (the test fails if the count goes up, and asks to lower the number when it goes down).
# Issue 15: 32 before the web layout was reorganised, 30 after (the quota files and balances now
# come through cloudmgr.quotas.services).  Most of the rest import ORM model classes for their
# types, or read configuration files, the planner, the programme's tracking or purchase reports.
MAX_WEB_MODULES_INTO_INTERNALS = 27


@dataclass
class ImportGraph:
    """Modules (dotted names) of a source tree and the modules each one imports."""

    files: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    # (importer, imported module, names imported from it) for ``from m import a, b``
    imported_names: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def resolve(self, name: str) -> str | None:
        """The module ``name`` refers to: itself, or its nearest parent in the tree."""
        while name and name not in self.files:
            name = name.rpartition(".")[0]
        return name or None

    def cycles(self) -> list[list[str]]:
        """The strongly connected components with more than one module (Tarjan, iterative)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []
        counter = 0
        for root in sorted(self.edges):
            if root in index:
                continue
            work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(self.edges[root])))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, successors = work[-1]
                advanced = False
                for succ in successors:
                    if succ not in index:
                        index[succ] = low[succ] = counter
                        counter += 1
                        stack.append(succ)
                        on_stack.add(succ)
                        work.append((succ, iter(sorted(self.edges[succ]))))
                        advanced = True
                        break
                    if succ in on_stack:
                        low[node] = min(low[node], index[succ])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
        return sorted(found)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import in the tree (module level, in functions, in classes), except under TYPE_CHECKING."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def build_graph(root: Path, packages: Iterable[str]) -> ImportGraph:
    files: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[_module_name(root, path)] = path
    graph = ImportGraph(files, {name: set() for name in files})
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        # A package's relative imports start from the package; a module's from its parent.
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                names = tuple(alias.name for alias in node.names)
                for imported in names:
                    submodule = f"{source}.{imported}"
                    targets.append(submodule if submodule in files else source)
                resolved_source = graph.resolve(source)
                if resolved_source is not None:
                    graph.imported_names.append((name, resolved_source, names))
            for target in targets:
                resolved = graph.resolve(target)
                if resolved is not None and resolved != name:
                    graph.edges[name].add(resolved)
    return graph


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _audience(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "web" and parts[1] in AUDIENCES else None


def _domain_internal(module: str) -> str | None:
    """``module`` if it is a domain package's internal module, else None."""
    parts = module.split(".")
    if len(parts) < 3 or parts[0] != "cloudmgr" or parts[1] in NOT_DOMAINS:
        return None
    return None if parts[2] in PUBLIC_MODULES else module


def _is_enum(module: str, name: str) -> bool:
    value = getattr(importlib.import_module(module), name, None)
    return isinstance(value, type) and issubclass(value, enum.Enum)


def web_modules_into_internals(graph: ImportGraph) -> dict[str, set[str]]:
    """Each web module that imports a domain's internals, and those internals."""
    into: dict[str, set[str]] = {}
    enums_only: dict[tuple[str, str], bool] = {}
    for importer, source, names in graph.imported_names:
        if _in(importer, "web") and _domain_internal(source) and f"{source}.{names[0]}" not in graph.files:
            only_enums = all(_is_enum(source, n) for n in names)
            key = (importer, source)
            enums_only[key] = enums_only.get(key, True) and only_enums
    for importer, targets in graph.edges.items():
        if not _in(importer, "web"):
            continue
        for target in targets:
            if _domain_internal(target) and not enums_only.get((importer, target), False):
                into.setdefault(importer, set()).add(target)
    return into


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build_graph(ROOT, PACKAGES)


def test_no_import_cycles(graph: ImportGraph) -> None:
    cycles = graph.cycles()
    assert cycles == [], "import cycles (strongly connected components):\n" + "\n".join(
        f"  {len(c)}: {', '.join(c)}" for c in cycles
    )


def test_cloudmgr_never_imports_web(graph: ImportGraph) -> None:
    wrong = sorted(
        f"{m} -> {t}" for m, targets in graph.edges.items() if _in(m, "cloudmgr") for t in targets if _in(t, "web")
    )
    assert wrong == []


def test_no_audience_imports_another(graph: ImportGraph) -> None:
    wrong = []
    for module, targets in graph.edges.items():
        mine = _audience(module)
        if mine is None:  # the app factory (web/__init__.py) registers every audience's blueprint
            continue
        for target in targets:
            theirs = _audience(target)
            if theirs is not None and mine != theirs:
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def test_shared_code_imports_no_audience_and_core_nothing_above_it(graph: ImportGraph) -> None:
    wrong = []
    for module, targets in graph.edges.items():
        for target in targets:
            if _in(module, SHARED) and _audience(target) is not None:
                wrong.append(f"{module} -> {target}")
            if _in(module, CORE) and _in(target, "web") and not _in(target, CORE):
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def test_web_top_level_holds_only_the_factory_and_packages() -> None:
    modules = sorted(p.name for p in (ROOT / "web").glob("*.py"))
    assert modules == ["__init__.py"]
    packages = {p.name for p in (ROOT / "web").iterdir() if (p / "__init__.py").is_file()}
    assert packages == AUDIENCES | {"common", "core"}


def test_web_modules_into_domain_internals_do_not_grow(graph: ImportGraph) -> None:
    count = len(web_modules_into_internals(graph))
    assert count <= MAX_WEB_MODULES_INTO_INTERNALS, (
        f"{count} web modules import a domain's internals (at most {MAX_WEB_MODULES_INTO_INTERNALS}): "
        "reach the domain through its services (python -m tests.test_architecture lists them)"
    )
    assert count == MAX_WEB_MODULES_INTO_INTERNALS, (
        f"only {count} web modules import a domain's internals now: lower MAX_WEB_MODULES_INTO_INTERNALS to {count}"
    )


# --- the process-global runtime only in entry points ---------------------------------------------
#
# ``cloudmgr.runtime.get_runtime()`` is the process's settings, database and providers.  Only entry
# points read it: the CLI (every ``cli.py``, ``cli_common``, ``console``), the work handlers and jobs
# (every ``jobs.py``, ``scheduler/``) and ``runtime`` itself.  Services receive what they need as
# parameters, so a test, a job or a page can hand them another database or provider (the /metrics view
# hands ``metrics_exposition.render`` its app's database and settings).
RUNTIME_ENTRY_POINTS = ("cloudmgr.cli_common", "cloudmgr.console", "cloudmgr.runtime")
RUNTIME_ENTRY_POINT_MODULES = frozenset({"cli", "jobs"})  # cloudmgr.cli, cloudmgr.<package>.cli, …jobs
RUNTIME_ENTRY_POINT_PACKAGES = ("cloudmgr.scheduler",)

# The allow-list of issue 15, now empty: modules that still read the runtime although they are not
# entry points.  Never add one (the collectors get the database from cloudmgr.metrics_exposition, the
# notifications their settings from the job that sends); the test fails while a listed module no
# longer reads it.
RUNTIME_READERS_STILL_TO_FIX: frozenset[str] = frozenset()


def is_runtime_entry_point(module: str) -> bool:
    return (
        module in RUNTIME_ENTRY_POINTS
        or module.rpartition(".")[2] in RUNTIME_ENTRY_POINT_MODULES
        or any(_in(module, package) for package in RUNTIME_ENTRY_POINT_PACKAGES)
    )


def _uses_get_runtime(tree: ast.AST) -> bool:
    """``get_runtime`` imported, called or reached as an attribute, except under TYPE_CHECKING."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and any(alias.name == "get_runtime" for alias in node.names):
            return True
        if (isinstance(node, ast.Name) and node.id == "get_runtime") or (
            isinstance(node, ast.Attribute) and node.attr == "get_runtime"
        ):
            return True
        pending.extend(ast.iter_child_nodes(node))
    return False


def runtime_readers(graph: ImportGraph) -> set[str]:
    """The modules of the graph, other than entry points, that read the process-global runtime."""
    return {
        module
        for module, path in graph.files.items()
        if not is_runtime_entry_point(module)
        and _uses_get_runtime(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    }


def test_only_entry_points_read_the_process_global_runtime(graph: ImportGraph) -> None:
    readers = runtime_readers(graph)
    new = sorted(readers - RUNTIME_READERS_STILL_TO_FIX)
    assert new == [], (
        f"{', '.join(new)} read get_runtime() but are not entry points (cli.py, jobs.py, scheduler/, console, "
        "cli_common, runtime): pass the service what it needs (db, providers, settings)"
    )
    fixed = sorted(RUNTIME_READERS_STILL_TO_FIX - readers)
    assert fixed == [], (
        f"{', '.join(fixed)} no longer read get_runtime(): remove them from RUNTIME_READERS_STILL_TO_FIX"
    )


# --- the checker itself, on a small tree --------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_blueprint_package_pattern_is_a_cycle_and_a_blueprint_module_is_not(tmp_path: Path) -> None:
    cyclic = build_graph(
        _tree(
            tmp_path / "a",
            {
                "app/__init__.py": "",
                "app/portal/__init__.py": "bp = object()\nfrom app.portal import views\n",
                "app/portal/views.py": "from app.portal import bp\n",
            },
        ),
        ["app"],
    )
    assert cyclic.cycles() == [["app.portal", "app.portal.views"]]
    fixed = build_graph(
        _tree(
            tmp_path / "b",
            {
                "app/__init__.py": "",
                "app/portal/__init__.py": "from app.portal import views\nfrom app.portal.blueprint import bp\n",
                "app/portal/blueprint.py": "bp = object()\n",
                "app/portal/views.py": "from app.portal.blueprint import bp\n",
            },
        ),
        ["app"],
    )
    assert fixed.cycles() == []
    assert fixed.edges["app.portal"] == {"app.portal.views", "app.portal.blueprint"}


def test_function_level_and_relative_imports_count_type_checking_ones_do_not(tmp_path: Path) -> None:
    graph = build_graph(
        _tree(
            tmp_path,
            {
                "pkg/__init__.py": "",
                "pkg/a.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from pkg import c\n"
                    "def f():\n    from .b import thing\n"
                ),
                "pkg/b.py": "from . import a\nthing = 1\n",
                "pkg/c.py": "import pkg.a\n",
            },
        ),
        ["pkg"],
    )
    assert graph.edges["pkg.a"] == {"pkg.b"}
    assert graph.edges["pkg.b"] == {"pkg.a"}
    assert graph.edges["pkg.c"] == {"pkg.a"}
    assert graph.cycles() == [["pkg.a", "pkg.b"]]


def test_domain_internals_are_what_is_not_the_public_face() -> None:
    assert _domain_internal("cloudmgr.quotas.files") == "cloudmgr.quotas.files"
    assert _domain_internal("cloudmgr.capacity.planner.plan") == "cloudmgr.capacity.planner.plan"
    assert _domain_internal("cloudmgr.quotas.services") is None
    assert _domain_internal("cloudmgr.moves.states") is None
    assert _domain_internal("cloudmgr.quotas") is None
    assert _domain_internal("cloudmgr.errors") is None
    assert _is_enum("cloudmgr.organisation.models", "Role")
    assert not _is_enum("cloudmgr.organisation.models", "User")


def test_the_runtime_rule_finds_every_way_of_reading_it_and_spares_entry_points(tmp_path: Path) -> None:
    graph = build_graph(
        _tree(
            tmp_path,
            {
                "cloudmgr/__init__.py": "",
                "cloudmgr/runtime.py": "def get_runtime():\n    return 1\n",
                "cloudmgr/shop/__init__.py": "",
                "cloudmgr/shop/services.py": (
                    "def f():\n    from cloudmgr.runtime import get_runtime\n    return get_runtime()\n"
                ),
                "cloudmgr/shop/reports.py": (
                    "from cloudmgr import runtime\ndef f():\n    return runtime.get_runtime()\n"
                ),
                "cloudmgr/shop/typed.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from cloudmgr.runtime import get_runtime\n"
                ),
                "cloudmgr/shop/jobs.py": "from cloudmgr.runtime import get_runtime\n",
                "cloudmgr/shop/cli.py": "from cloudmgr.runtime import get_runtime\n",
                "cloudmgr/scheduler/__init__.py": "",
                "cloudmgr/scheduler/service.py": "from cloudmgr.runtime import get_runtime\n",
                "cloudmgr/metrics_exposition.py": "from cloudmgr.runtime import get_runtime\n",
            },
        ),
        ["cloudmgr"],
    )
    assert runtime_readers(graph) == {"cloudmgr.shop.services", "cloudmgr.shop.reports", "cloudmgr.metrics_exposition"}


def main() -> None:
    graph = build_graph(ROOT, PACKAGES)
    cycles = graph.cycles()
    print(f"{len(graph.files)} modules, {sum(len(t) for t in graph.edges.values())} imports, {len(cycles)} cycles")
    for component in cycles:
        print(f"  cycle of {len(component)}: {', '.join(component)}")
    into = web_modules_into_internals(graph)
    print(f"{len(into)} web modules import a domain's internals (ratchet: {MAX_WEB_MODULES_INTO_INTERNALS}):")
    for module in sorted(into):
        print(f"  {module}: {', '.join(sorted(into[module]))}")
    if "--edges" in sys.argv:
        for module in sorted(graph.edges):
            print(f"{module} -> {', '.join(sorted(graph.edges[module]))}")


if __name__ == "__main__":
    main()


# Who acts is decided once, as an Actor (role, department, name); only the audit writer,
# the sink that records the name, takes it as a string.
ACTOR_AS_STRING_ALLOWED = frozenset({"cloudmgr/audit/services.py"})


def actor_string_parameters(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if rel in ACTOR_AS_STRING_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            for arg in args:
                if arg.arg == "actor" and arg.annotation is not None and ast.unparse(arg.annotation) == "str":
                    found.append(f"{rel}:{node.lineno} {node.name}")
    return found


def test_services_take_the_actor_typed_not_as_a_string() -> None:
    assert actor_string_parameters(ROOT / "cloudmgr") == []


def test_the_actor_rule_finds_a_string_actor(tmp_path: Path) -> None:
    package = tmp_path / "cloudmgr"
    package.mkdir()
    (package / "things.py").write_text("def act(session, *, actor: str) -> None: ...\n", encoding="utf-8")
    (package / "fine.py").write_text("def act(session, *, actor: Actor) -> None: ...\n", encoding="utf-8")
    assert actor_string_parameters(package) == ["cloudmgr/things.py:1 act"]
