"""The layer rule, checked in the imports: the Tor layer knows nothing of YouTube, notes or the
application; the YouTube layer knows nothing of Tor; notes know only YouTube's values; only the
CLI and the root import the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import yt_study_buddy

PACKAGE = Path(yt_study_buddy.__file__).parent
#: Root modules every layer may use: errors, defaults and atomic files.
SHARED = {"_exceptions", "_settings", "_fs"}
#: What each layer may import from yt_study_buddy besides itself and SHARED.
ALLOWED: dict[str, set[str]] = {
    "tor": set(),
    "youtube": set(),
    "notes": {"youtube"},
    # The offline demo runs the private Tor network and the fake YouTube of testing/.
    "app": {"tor", "youtube", "notes", "testing"},
}


def _imported_modules(path: Path) -> set[str]:
    """Every yt_study_buddy module a file imports, as a dotted path relative to the package."""
    package_parts = path.relative_to(PACKAGE).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package_parts[: len(package_parts) - node.level + 1])
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("yt_study_buddy"):
                target = node.module.removeprefix("yt_study_buddy").lstrip(".")
            else:
                continue
            names = [target] if node.module else [f"{target}.{alias.name}".lstrip(".") for alias in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix("yt_study_buddy").lstrip(".")
                for alias in node.names
                if alias.name.startswith("yt_study_buddy.")
            )
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    allowed = {layer} | SHARED | ALLOWED[layer]
    breaches = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for module in sorted(_imported_modules(path))
        if module.split(".")[0] not in allowed
    ]
    assert breaches == []


def test_only_the_root_and_the_entry_points_import_the_cli() -> None:
    importers = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent != PACKAGE and any(module.split(".")[0] == "cli" for module in _imported_modules(path))
    ]
    assert importers == []


def test_the_rule_catches_a_breach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan itself sees relative, absolute and package-level imports."""
    layer = tmp_path / "tor"
    layer.mkdir()
    (layer / "_bad.py").write_text(
        "from ..notes._files import note_stem\nfrom yt_study_buddy.youtube import parse_input\n"
        "import yt_study_buddy.app._batch\nfrom .. import cli\n"
    )
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    assert _imported_modules(layer / "_bad.py") == {"notes._files", "youtube", "app._batch", "cli"}
