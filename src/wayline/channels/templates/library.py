"""The template library: the pre-built templates shipped in the package, and the workspace's own.

Pre-built templates live in ``library/`` inside this package. To edit one, copy it into the
workspace's template folder (``<home>/templates``, see :meth:`TemplateLibrary.copy`): a template
there with the same name takes precedence, so an upgrade never overwrites a marketer's edits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wayline.channels.templates.render import Template
from wayline.errors import InputError, NotFound

BUILTIN_DIR = Path(__file__).parent / "library"


def workspace_templates_dir(home: Path, workspace_id: str) -> Path:
    """Where a workspace's own templates live in the data folder (one folder per workspace:
    the dashboard edits them there, the journey runtime renders from there)."""
    return Path(home) / "templates" / workspace_id


class TemplateLibrary:
    def __init__(self, workspace_dir: Path | None = None) -> None:
        self.workspace_dir = workspace_dir

    def _paths(self) -> dict[str, tuple[Path, bool]]:
        found: dict[str, tuple[Path, bool]] = {}
        for path in sorted(BUILTIN_DIR.glob("*.yaml")):
            found[path.stem] = (path, True)
        if self.workspace_dir is not None and self.workspace_dir.is_dir():
            for path in sorted(self.workspace_dir.glob("*.yaml")):
                found[path.stem] = (path, False)
        return found

    def names(self) -> list[str]:
        return sorted(self._paths())

    def get(self, name: str) -> Template:
        paths = self._paths()
        if name not in paths:
            raise NotFound(f"no template named '{name}' (known: {', '.join(sorted(paths))})")
        path, builtin = paths[name]
        template = Template.load(path, builtin=builtin)
        if template.name != name:
            raise InputError(
                f"the file is named '{name}' but the template inside is '{template.name}'",
                source=str(path),
                field="name",
            )
        return template

    def all(self) -> list[Template]:
        return [self.get(name) for name in self.names()]

    def copy(self, name: str) -> Path:
        """Copy a pre-built template into the workspace folder for editing; its new path."""
        if self.workspace_dir is None:
            raise InputError("no workspace template folder is configured")
        source = BUILTIN_DIR / f"{name}.yaml"
        if not source.is_file():
            raise NotFound(f"no pre-built template named '{name}'")
        target = self.workspace_dir / f"{name}.yaml"
        if target.exists():
            raise InputError(f"{target} already exists: edit it there", source=str(target))
        self.workspace_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target
