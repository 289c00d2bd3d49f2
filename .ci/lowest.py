"""Print a pip constraints file pinning every floor pyproject.toml declares (`name>=X` -> `name==X`).

The build requirements, the runtime dependencies and every extra: CI installs the package
with these pins, so each declared floor is a version the tests have passed on.
Needs Python 3.11 or later (tomllib).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml").read_text(encoding="utf-8"))
requirements = [*project["build-system"]["requires"], *project["project"]["dependencies"]]
for extra in project["project"].get("optional-dependencies", {}).values():
    requirements.extend(extra)
floors: dict[str, str] = {}
for requirement in requirements:
    # An environment marker (`; python_version < '3.11'`) is kept out of the pin: a constraint
    # for a package an interpreter does not install is ignored there.
    # Extras (`moto[server]`) are kept out of the pin too: a constraint names the package alone.
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[[A-Za-z0-9_.,\s-]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(?:;.*)?", requirement)
    if match is None:
        sys.exit(f"no floor to pin in {requirement!r}: write it as name>=version")
    name, floor = match.group(1).lower(), match.group(2)
    if floors.setdefault(name, floor) != floor:
        sys.exit(f"{name} has two floors: {floors[name]} and {floor}")
for name, floor in sorted(floors.items()):
    print(f"{name}=={floor}")
