"""`--help` type column: typer 0.29's rich help prints ``<bool>`` for every on/off flag (TyperOption.display_type_rich
has no flag case), as if ``--plot`` took a value. A flag takes none, so it shows no type; valued options keep
typer's ``<int>``, ``<float>``, ``<path>``... Imported once by foley.cli."""

from __future__ import annotations

from typer.core import TyperOption

_typer_display_type_rich = TyperOption.display_type_rich


def _display_type_rich(self: TyperOption, ctx) -> str | None:
    if self.is_flag or self.count:
        return None
    return _typer_display_type_rich(self, ctx)


TyperOption.display_type_rich = _display_type_rich
