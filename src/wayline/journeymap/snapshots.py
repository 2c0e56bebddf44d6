"""Dated snapshots of the map, and the history of a KPI per stage.

Each ``wayline map --snapshot`` saves the map's JSON (:func:`wayline.journeymap.model.to_json`)
as ``<home>/snapshots/<workspace>/<generated_at>.json`` (UTC, ``20261123T193000Z``). A snapshot
is written to a temporary file and renamed into place, so a crash never leaves half a snapshot.
:func:`kpi_history` reads them back, oldest first, and gives one KPI of one stage (of the view
with the given label, default the first) per snapshot: how a figure moved as the store changed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from wayline.errors import InputError, NotFound
from wayline.journeymap.model import JourneyMap, to_json

_STAMP = "%Y%m%dT%H%M%SZ"


def snapshot_dir(home: Path, workspace_id: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in workspace_id)
    return home / "snapshots" / safe


def save_snapshot(home: Path, journey_map: JourneyMap) -> Path:
    """Write the map as a dated snapshot; returns its path."""
    folder = snapshot_dir(home, journey_map.workspace_id)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = journey_map.generated_at.astimezone(UTC).strftime(_STAMP)
    path = folder / f"{stamp}.json"
    n = 1
    while path.exists():  # two builds in the same second keep both
        path = folder / f"{stamp}-{n}.json"
        n += 1
    data = orjson.dumps(to_json(journey_map), option=orjson.OPT_INDENT_2)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".snapshot-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class KpiPoint:
    taken_at: datetime
    since: datetime
    until: datetime
    value: float | Decimal | int | None
    unit: str


def list_snapshots(home: Path, workspace_id: str) -> list[Path]:
    folder = snapshot_dir(home, workspace_id)
    if not folder.is_dir():
        return []

    def order(p: Path) -> tuple[str, int]:
        stamp, _, n = p.stem.partition("-")
        return stamp, int(n) if n.isdigit() else 0

    return sorted((p for p in folder.glob("*.json") if not p.name.startswith(".")), key=order)


def _value(raw: Any, unit: str) -> float | Decimal | int | None:
    if raw is None:
        return None
    if unit == "money":
        return Decimal(str(raw))
    return raw  # type: ignore[no-any-return]


def kpi_history(
    home: Path, workspace_id: str, stage: str, kpi: str, view: str | None = None
) -> list[KpiPoint]:
    """One KPI of one stage over the saved snapshots, oldest first."""
    paths = list_snapshots(home, workspace_id)
    if not paths:
        raise NotFound(
            f"no snapshots of workspace {workspace_id!r} yet; run `wayline map --snapshot` first"
        )
    points: list[KpiPoint] = []
    for path in paths:
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not a journey map snapshot: {exc}", source=str(path)) from exc
        views = data.get("views", [])
        chosen = next((v for v in views if view is None or v.get("label") == view), None)
        if chosen is None:
            continue
        st = next((s for s in chosen.get("stages", []) if s.get("stage") == stage), None)
        if st is None:
            continue
        k = next((k for k in st.get("kpis", []) if k.get("key") == kpi), None)
        if k is None:
            continue
        points.append(
            KpiPoint(
                taken_at=datetime.fromisoformat(data["generated_at"]),
                since=datetime.fromisoformat(data["since"]),
                until=datetime.fromisoformat(data["until"]),
                value=_value(k.get("value"), k.get("unit", "count")),
                unit=k.get("unit", "count"),
            )
        )
    return points
