"""The shape of the source tree, read from its syntax trees (nothing in h2q is imported).

Over every module of ``src/h2q``:

- no function is longer than :data:`MAX_LINES` lines (from ``def`` to its last line,
  docstring included, decorators not);
- no function takes more than :data:`MAX_PARAMS` parameters (``self``/``cls`` not counted,
  ``*args`` and ``**kwargs`` one each), except the ``__init__`` of an estimator class (a class
  with a ``fit`` method, its own or inherited from an h2q class: scikit-learn's protocol
  stores every option as an ``__init__`` keyword) and compiled kernels (decorated with
  ``jit``/``njit``: numba passes arrays, not objects);
- the modules import each other without a cycle. The graph has an edge ``A -> B`` when ``A``
  imports ``B`` when it is loaded: statements at module level (outside ``if TYPE_CHECKING``
  blocks), plus the packages above ``B`` that are not above ``A`` (importing ``h2q.a.b``
  runs ``h2q/a/__init__.py`` first). Imports inside functions are left out of that graph:
  they run at call time, after every module has loaded, and are how optional or heavy pieces
  load lazily; they are checked on their own, in a second graph of module-level and
  function-level imports, which must be acyclic between packages (``h2q.search``,
  ``h2q.cli``, each top-level module on its own; ``h2q/__init__.py``, which re-exports the
  public API, is left out): a function-level import may reach into its own package, never
  into a package that imports it;
- no module names a README or a ``docs/`` path in its code: the library never edits its own
  documentation (docstrings and comments are free to mention them).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "h2q"
MAX_LINES = 100
MAX_PARAMS = 12

# --- reading the tree --------------------------------------------------------------------


def module_name(path: Path, root: Path = SRC) -> str:
    """``src/h2q/search/flat.py`` -> ``h2q.search.flat``; ``src/h2q/search/__init__.py`` ->
    ``h2q.search``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_modules(root: Path = SRC, package: str = PACKAGE) -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package: name -> (path, syntax tree)."""
    return {
        module_name(path, root): (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for path in sorted((root / package).rglob("*.py"))
    }


@pytest.fixture(scope="module")
def modules() -> dict[str, tuple[Path, ast.Module]]:
    found = read_modules()
    assert len(found) > 50, f"expected the whole h2q package under {SRC}, found {len(found)}"
    return found


def functions(tree: ast.AST) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """Every function and method with its qualified name (``Class.method``, ``outer.inner``)."""

    def walk(node: ast.AST, prefix: str) -> Iterator:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield child, prefix + child.name
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


# --- function length and parameters ------------------------------------------------------


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the function's last line (decorators not counted)."""
    return node.end_lineno - node.lineno + 1


def n_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> int:
    """Parameters of a function; a method's first (``self``/``cls``) is not counted."""
    args = node.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(names) + (args.vararg is not None) + (args.kwarg is not None)
    static = any(_decorator_name(d) == "staticmethod" for d in node.decorator_list)
    return count - 1 if is_method and not static and names else count


def _decorator_name(node: ast.expr) -> str:
    """``numba.njit(cache=True)`` -> ``njit``; ``_jit.jit()`` -> ``jit``; ``staticmethod``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def is_kernel(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated with ``jit`` or ``njit`` (numba, or h2q's wrapper of it)."""
    return any(_decorator_name(d) in ("jit", "njit") for d in node.decorator_list)


def estimator_classes(trees: list[ast.Module]) -> set[str]:
    """Names of classes with a ``fit`` method, their own or inherited from an h2q class."""
    bases: dict[str, set[str]] = {}
    own_fit: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(_decorator_name(b) for b in node.bases)
                if any(
                    isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "fit"
                    for item in node.body
                ):
                    own_fit.add(node.name)
    found = set(own_fit)
    changed = True
    while changed:
        grown = {name for name, parents in bases.items() if parents & found}
        changed = not grown <= found
        found |= grown
    return found


def parameter_violations(trees: dict[str, ast.Module]) -> list[str]:
    """Functions with more than :data:`MAX_PARAMS` parameters that no exception covers."""
    estimators = estimator_classes(list(trees.values()))
    found = []
    for name, tree in trees.items():
        methods = _method_owners(tree)
        for node, qualname in functions(tree):
            owner = methods.get(id(node))
            count = n_parameters(node, owner is not None)
            if count <= MAX_PARAMS or is_kernel(node):
                continue
            if node.name == "__init__" and owner in estimators:
                continue
            found.append(f"{name}.{qualname} ({count} parameters)")
    return found


def _method_owners(tree: ast.Module) -> dict[int, str]:
    """id(function node) -> name of the class it is a method of."""
    return {
        id(item): node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def length_violations(trees: dict[str, ast.Module]) -> list[str]:
    """Functions longer than :data:`MAX_LINES` lines."""
    return [
        f"{name}.{qualname} ({function_lines(node)} lines)"
        for name, tree in trees.items()
        for node, qualname in functions(tree)
        if function_lines(node) > MAX_LINES
    ]


# --- the import graph --------------------------------------------------------------------


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.Module, *, in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements run when the module loads, and those in functions if asked for."""

    def walk(node: ast.AST) -> Iterator:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            elif isinstance(child, ast.If) and _is_type_checking(child):
                continue
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if in_functions:
                    yield from walk(child)
            else:
                yield from walk(child)

    yield from walk(tree)


def imported_modules(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: set[str]
) -> set[str]:
    """The h2q modules an import statement loads (``from p import m`` loads ``p.m``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        here = importer.split(".") if is_package else importer.split(".")[:-1]
        base_parts = here[: len(here) - node.level + 1]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    found = {base} if base in known else set()
    found |= {f"{base}.{alias.name}" for alias in node.names} & known
    return found


def _with_packages(target: str, importer: str) -> set[str]:
    """``target`` and the packages above it, less ``importer`` and the packages above it.

    Those are loading already when ``importer`` runs (``from .. import _io`` does not load
    ``h2q`` again), so they give no edge.
    """
    return _ancestry(target) - _ancestry(importer)


def _ancestry(name: str) -> set[str]:
    """``h2q.a.b`` -> ``{h2q, h2q.a, h2q.a.b}``."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_graph(
    modules: dict[str, tuple[Path, ast.Module]], *, in_functions: bool
) -> dict[str, set[str]]:
    """``A -> {B, ...}``: the h2q modules each module imports (see the module notes)."""
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, tree) in modules.items():
        is_package = path.name == "__init__.py"
        for node in import_nodes(tree, in_functions=in_functions):
            for target in imported_modules(node, name, is_package, known):
                graph[name] |= _with_packages(target, name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path ``[a, b, ..., a]``, or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def package_graph(graph: dict[str, set[str]], depth: int = 2) -> dict[str, set[str]]:
    """The graph between packages (``h2q.search``, ``h2q.cli``, top-level modules as they are)."""
    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        group = ".".join(source.split(".")[:depth])
        packages.setdefault(group, set())
        for target in targets:
            other = ".".join(target.split(".")[:depth])
            if other != group and other != PACKAGE:
                packages[group].add(other)
    return packages


# --- README and docs/ --------------------------------------------------------------------

#: A string that is a path to a README file, or a path into (or named) ``docs``.
DOCS_PATH = re.compile(r"(^|[/\\])README(\.\w+)?$|(^|[/\\])docs([/\\]|$)")


def _docstring_nodes(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def documentation_paths(tree: ast.Module) -> list[tuple[int, str]]:
    """``(line, string)`` of every string in the code (not a docstring) naming a README or docs/."""
    docstrings = _docstring_nodes(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and DOCS_PATH.search(node.value)
    ]


# --- the checks ----------------------------------------------------------------------------


def test_no_function_is_longer_than_the_limit(modules):
    trees = {name: tree for name, (_, tree) in modules.items()}
    found = length_violations(trees)
    assert not found, "functions over the limit:\n" + "\n".join(found)


def test_no_function_takes_too_many_parameters(modules):
    trees = {name: tree for name, (_, tree) in modules.items()}
    found = parameter_violations(trees)
    assert not found, "functions over the limit:\n" + "\n".join(found)


def test_modules_import_without_a_cycle(modules):
    graph = import_graph(modules, in_functions=False)
    assert sum(map(len, graph.values())) > 100, "the import graph came out nearly empty"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_packages_import_without_a_cycle_counting_function_level_imports(modules):
    graph = package_graph(import_graph(modules, in_functions=True))
    assert find_cycle(graph) is None, f"package cycle: {' -> '.join(find_cycle(graph))}"


def test_no_module_names_a_readme_or_docs_path(modules):
    found = [
        f"{name}:{line}: {text!r}"
        for name, (_, tree) in modules.items()
        for line, text in documentation_paths(tree)
    ]
    assert not found, "README or docs/ paths in the library:\n" + "\n".join(found)


# --- the checks catch what they are meant to catch -------------------------------------------


def _tree(source: str) -> ast.Module:
    return ast.parse(source)


def test_length_check_counts_from_def_to_the_last_line():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 1))
    fits = _tree(f"def f():\n{body}\n")
    too_long = _tree(f"def f():\n{body}\n    return x0\n")
    assert length_violations({"m": fits}) == []
    assert length_violations({"m": too_long}) == [f"m.f ({MAX_LINES + 1} lines)"]


def test_parameter_check_and_its_exceptions():
    many = ", ".join(f"a{i}" for i in range(MAX_PARAMS))
    source = f"""
def ok({many}): pass
def too_many({many}, extra): pass
def star({many}, *args): pass
class Plain:
    def method(self, {many}): pass
    def __init__(self, {many}, extra): pass
class Base:
    def fit(self, X): return self
class Estimator(Base):
    def __init__(self, {many}, extra): pass
@jit(parallel=True)
def kernel({many}, extra): pass
@numba.njit
def kernel2({many}, extra): pass
"""
    assert parameter_violations({"m": _tree(source)}) == [
        f"m.too_many ({MAX_PARAMS + 1} parameters)",
        f"m.star ({MAX_PARAMS + 1} parameters)",
        f"m.Plain.__init__ ({MAX_PARAMS + 1} parameters)",
    ]


def _graph(sources: dict[str, str], *, in_functions: bool = False) -> dict[str, set[str]]:
    modules = {
        name: (Path("__init__.py" if is_package else "m.py"), _tree(source))
        for (name, is_package), source in sources.items()
    }
    return import_graph(modules, in_functions=in_functions)


def test_import_graph_resolves_relative_imports_and_parent_packages():
    graph = _graph(
        {
            ("h2q", True): "from .a import x\nfrom . import b",
            ("h2q.a", True): "from .inner import y",
            ("h2q.a.inner", False): "from .. import b\nfrom ..c.d import z",
            ("h2q.b", False): "import numpy",
            ("h2q.c", True): "",
            ("h2q.c.d", False): "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from ..a import inner\ndef f():\n    from ..a import inner",
        }
    )
    assert graph == {
        "h2q": {"h2q.a", "h2q.b"},
        "h2q.a": {"h2q.a.inner"},
        "h2q.a.inner": {"h2q.b", "h2q.c", "h2q.c.d"},
        "h2q.b": set(),
        "h2q.c": set(),
        "h2q.c.d": set(),
    }
    assert find_cycle(graph) is None


def test_cycle_check_finds_a_cycle_through_a_package():
    sources = {
        ("h2q", True): "",
        ("h2q.a", True): "from .inner import x",
        ("h2q.a.inner", False): "from ..b import y",
        ("h2q.b", False): "from .a import z",
    }
    assert find_cycle(_graph(sources)) == ["h2q.a", "h2q.a.inner", "h2q.b", "h2q.a"]


def test_function_level_imports_count_only_in_the_package_graph():
    sources = {
        ("h2q", True): "",
        ("h2q.a", True): "from ..b import y",
        ("h2q.b", True): "def f():\n    from ..a import x",
    }
    assert find_cycle(_graph(sources)) is None
    graph = package_graph(_graph(sources, in_functions=True))
    assert find_cycle(graph) == ["h2q.a", "h2q.b", "h2q.a"]


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ('ROOT / "README.md"', True),
        ('open("README.md", "w")', True),
        ('Path("docs") / "results.md"', True),
        ('root + "/docs/api.md"', True),
        ('"see docs/asymmetric.md for the estimator"', False),
        ('"the docs of numba"', False),
        ('"README of the data set"', False),
    ],
)
def test_documentation_path_check(source, named):
    tree = _tree(f'"""docs/results.md"""\ndef f():\n    """README.md"""\n    x = {source}\n')
    assert bool(documentation_paths(tree)) is named
