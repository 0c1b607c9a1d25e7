"""Code fingerprints that decide reruns: the hash of exactly the library code a job runs.

Snakemake does not see the library modules a script imports, so every rule passes ``code=...`` as a
parameter: when it changes, the rule's jobs rerun. The fingerprint of a rule is computed from the code,
not listed by hand:

* the source of its stage function (``xai_ssl.stages.<stage>.<rule>``) and of the same-module definitions
  that function uses;
* every ``xai_ssl`` module that function imports or uses, and their import closure (every ``xai_ssl`` import
  statement of those modules, at module level or inside functions, followed transitively; a module's
  parent packages too, since importing it runs their ``__init__``);
* for jobs of one method or metric (a registry entry), the closure of that entry's module.

The analysis is static (``ast``): nothing is imported, so the Snakefile can call it cheaply. Registries
that import their plugin modules dynamically (``methods/__init__``, ``metrics/__init__``) are not followed
into every plugin; a job adds the plugins it runs (see :func:`rule_fingerprint`'s ``plugins``).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "xai_ssl"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(name: str) -> Path:
    """The source file of an ``xai_ssl`` module or package (``xai_ssl.a.b`` -> a/b.py or a/b/__init__.py)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"not an {PACKAGE} module: {name!r}")
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"fingerprint: no module {name} under {PACKAGE_DIR}")


def _is_module(name: str) -> bool:
    try:
        module_file(name)
    except (FileNotFoundError, ValueError):
        return False
    return True


def _parents(name: str) -> list[str]:
    """``xai_ssl.a.b`` -> [``xai_ssl``, ``xai_ssl.a``]."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported(node: ast.AST) -> list[str]:
    """The ``xai_ssl`` modules an import statement loads (``from m import x``: ``m.x`` when that is a module)."""
    out: list[str] = []
    if isinstance(node, ast.Import):
        out = [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE:
        out = [node.module] + [f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")]
    return out


@functools.lru_cache(maxsize=None)
def _tree(name: str) -> ast.Module:
    return ast.parse(module_file(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def direct_imports(name: str) -> frozenset[str]:
    """Modules a module imports anywhere in its source (``TYPE_CHECKING`` blocks excluded), plus its parent packages."""
    found: set[str] = set(_parents(name))
    tree = _tree(name)
    type_only: set[int] = set()  # nodes under `if TYPE_CHECKING:` run nothing
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        for mod in _imported(node):
            found.add(mod)
            found.update(_parents(mod))
    found.discard(name)
    return frozenset(found)


def import_closure(names: Iterable[str]) -> set[str]:
    """The given modules and everything they import, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(direct_imports(name) - seen)
    return seen


def _top_level(tree: ast.Module) -> tuple[dict[str, ast.AST], dict[str, list[str]]]:
    """Top-level definitions by name, and the modules each imported name stands for."""
    defs: dict[str, ast.AST] = {}
    imports: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs[n.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                local = (alias.asname or alias.name).split(".")[0]
                imports[local] = _imported(node) if isinstance(node, ast.ImportFrom) else [alias.name] if alias.name.startswith(PACKAGE) else []
    return defs, imports


def function_dependencies(module: str, function: str) -> tuple[list[str], set[str]]:
    """(source of the function and of the same-module definitions it uses, ``xai_ssl`` modules it uses)."""
    tree = _tree(module)
    defs, imports = _top_level(tree)
    if function not in defs:
        raise KeyError(f"fingerprint: {module} defines no {function!r}")
    source = module_file(module).read_text(encoding="utf-8")
    used_defs: list[str] = []
    modules: set[str] = set()
    todo = [function]
    while todo:
        name = todo.pop()
        if name in used_defs:
            continue
        used_defs.append(name)
        node = defs[name]
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                if sub.id in defs and sub.id not in used_defs:
                    todo.append(sub.id)
                modules.update(imports.get(sub.id, []))
            for mod in _imported(sub):  # imports inside the function
                modules.add(mod)
    segments = [ast.get_source_segment(source, defs[n]) or "" for n in sorted(used_defs)]
    return segments, modules


def fingerprint(module: str, function: str | None = None, plugins: Iterable[str] = ()) -> str:
    """Hash of a function's code (or a whole module's, without ``function``) and of its import closure plus ``plugins``'."""
    h = hashlib.sha256()
    if function is None:
        used = {module}
    else:
        segments, used = function_dependencies(module, function)
        for text in segments:
            h.update(text.encode())
        used.update(_parents(module))
    for name in sorted(import_closure([*used, *plugins])):
        path = module_file(name)
        h.update(str(path.relative_to(PACKAGE_DIR)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def stage_module(rule: str) -> str:
    """The stage module that defines the function of ``rule`` (``xai_ssl.stages.<stage>``)."""
    for path in sorted((PACKAGE_DIR / "stages").glob("*.py")):
        name = f"{PACKAGE}.stages.{path.stem}"
        if rule in _top_level(_tree(name))[0]:
            return name
    raise KeyError(f"fingerprint: no stage function named {rule!r} in {PACKAGE_DIR / 'stages'}")


def rule_fingerprint(rule: str, plugins: Iterable[str] = ()) -> str:
    """The ``code`` parameter of a rule: its stage function's code and closure, the job runner's, and ``plugins``'."""
    return fingerprint(stage_module(rule), rule, [f"{PACKAGE}.stages.job", *plugins])
