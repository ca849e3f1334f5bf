"""The layers hold: dashboard -> backfills -> indexing, no import cycles inside an app, and the
platform never imports the demo app (contracts in .importlinter)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_config_module_and_indexing_package_is_under_a_layers_contract():
    """A module the contracts do not name is not checked: config's modules are listed one by one."""
    contracts = (ROOT / ".importlinter").read_text()
    modules = [f"config.{p.stem}" for p in (ROOT / "config").glob("*.py") if p.stem != "__init__"]
    unlisted = [m for m in modules if m not in contracts]
    assert not unlisted, f"add {unlisted} to a layer in .importlinter"
    packages = [p.name for p in (ROOT / "indexing").iterdir() if (p / "__init__.py").exists()
                and p.name not in ("migrations", "management")]
    layers = contracts.split("[importlinter:contract:indexing-layers]")[1]
    assert not [p for p in packages if p not in layers], "an indexing sub-package is missing from its layers"
