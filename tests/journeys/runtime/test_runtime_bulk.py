"""The runtime's bulk statements on SQLite and PostgreSQL: lookups by a batch of keys, inserts
of tuples and dicts (binary COPY on PostgreSQL), statistics for never-analysed tables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runtime_support import T0, add_profiles
from sqlalchemy import bindparam, select, text

from wayline.journeys.engine import RecordKind, Status, StepRecord
from wayline.journeys.runtime.bulk import (
    Later,
    inline,
    insert_rows,
    keys_json,
    member_of,
    probe,
    update_rows,
)
from wayline.journeys.runtime.records import COLUMNS, TEXT, record_row, write_records
from wayline.journeys.runtime.statistics import Statistics
from wayline.storage.db import Database
from wayline.storage.journey_models import InstanceRow, StepCountRow, StepRecordRow


def _instances(db: Database, people: list[str], status: str) -> None:
    rows = [
        {"workspace_id": "default", "instance_id": f"j:{p}:1", "journey_id": "j", "version": 1,
         "person_id": p, "entry_number": 1, "status": status, "state": "{}", "entered_at": T0,
         "updated_at": T0, "ended_at": None if status == "active" else T0}
        for p in people
    ]  # fmt: skip
    with db.write() as conn:
        insert_rows(conn, InstanceRow.__table__, rows, postgres=db.dialect == "postgresql")


def test_probe_finds_the_rows_of_each_key_with_the_querys_column_names(db: Database) -> None:
    pg = db.dialect == "postgresql"
    _instances(db, [f"a{i}" for i in range(30)], "active")
    _instances(db, [f"b{i}" for i in range(30)], "completed")
    keys = ["a3", "a7", "b5", "a29", "nobody"]
    active = select(InstanceRow.person_id, InstanceRow.entry_number).where(
        InstanceRow.workspace_id == "default", InstanceRow.status == inline("active")
    )
    with db.read() as conn:
        rows = conn.execute(probe(active, InstanceRow.person_id, keys, pg)).all()
        ids = conn.scalars(select(InstanceRow.id).where(InstanceRow.person_id.in_(["a1", "b2"])))
        by_id = conn.scalars(probe(select(InstanceRow.person_id), InstanceRow.id, list(ids), pg))
        found = sorted(by_id.all())
    assert sorted((r.person_id, r.entry_number) for r in rows) == [("a29", 1), ("a3", 1), ("a7", 1)]
    assert found == ["a1", "b2"]


def test_records_and_counts_are_written_from_tuples(db: Database) -> None:
    pg = db.dialect == "postgresql"
    at = T0 + timedelta(seconds=1)
    rows = [
        ("default", "j", 1, f"j:p{i}:1", f"p{i}", RecordKind.REACHED, "s1", "send", None, None, at)
        for i in range(5)
    ] + [("default", "j", 1, "j:p0:1", "p0", RecordKind.LEFT, "s1", "send", "queued", None, at)]
    for _ in range(2):  # the second batch adds to the counters
        with db.write() as conn:
            write_records(conn, rows, postgres=pg)
    with db.read() as conn:
        stored = conn.execute(select(*[StepRecordRow.__table__.c[n] for n in COLUMNS])).all()
        counts = {
            (r.kind, r.outcome): r.n
            for r in conn.execute(select(StepCountRow.kind, StepCountRow.outcome, StepCountRow.n))
        }
    assert len(stored) == 12
    assert {r.at for r in stored} == {at}
    assert sorted((r.person_id, r.kind, r.outcome) for r in stored)[:2] == [
        ("p0", "left", "queued"),
        ("p0", "left", "queued"),
    ]
    assert counts == {("reached", ""): 10, ("left", "queued"): 2}


@pytest.mark.postgres
def test_tables_never_analysed_are_analysed_once_they_hold_rows(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        db.ensure_default_workspace()
        add_profiles(db, [f"p{i}" for i in range(50)])

        def analysed() -> dict[str, bool]:
            with db.read() as conn:
                return {
                    name: reltuples >= 0
                    for name, reltuples in conn.execute(
                        text(
                            "SELECT relname, reltuples FROM pg_class WHERE relname IN "
                            "('customer_profiles', 'journey_timers') AND relkind = 'r' "
                            "AND relnamespace = CAST(current_schema() AS regnamespace)"
                        )
                    ).all()
                }

        assert analysed() == {"customer_profiles": False, "journey_timers": False}
        statistics = Statistics(db, every=0.0)
        statistics.check()
        # The profiles hold rows: analysed. The timers are empty: left for later.
        assert analysed() == {"customer_profiles": True, "journey_timers": False}
    finally:
        db.close()


def test_update_rows_sets_each_rows_values_grouped_or_not(db: Database) -> None:
    pg = db.dialect == "postgresql"
    _instances(db, [f"a{i}" for i in range(6)], "active")
    later = T0 + timedelta(hours=1)
    with db.read() as conn:
        ids = dict(conn.execute(select(InstanceRow.person_id, InstanceRow.id)).all())
    # Four rows share their values (one statement), two have their own.
    done = {"status": "completed", "state": "{}", "updated_at": later, "ended_at": later}
    rows = [{"id": ids[f"a{i}"], **done} for i in range(4)] + [
        {"id": ids["a4"], "status": "active", "state": '{"n": 4}', "updated_at": later,
         "ended_at": None},
        {"id": ids["a5"], "status": "exited", "state": '{"n": 5}', "updated_at": T0,
         "ended_at": later},
    ]  # fmt: skip
    with db.write() as conn:
        update_rows(conn, InstanceRow.__table__, "id", rows, postgres=pg)
    with db.read() as conn:
        stored = {
            r.person_id: (r.status, r.state, r.updated_at, r.ended_at)
            for r in conn.execute(
                select(InstanceRow.person_id, InstanceRow.status, InstanceRow.state,
                       InstanceRow.updated_at, InstanceRow.ended_at)
            )
        }  # fmt: skip
    assert stored == {
        **{f"a{i}": ("completed", "{}", later, later) for i in range(4)},
        "a4": ("active", '{"n": 4}', later, None),
        "a5": ("exited", '{"n": 5}', T0, later),
    }


def test_inserts_larger_than_one_statement_keep_every_row_in_order(db: Database) -> None:
    """SQLite writes 999 values per statement (90 step records): 250 rows take three, the last
    one shorter; clashing rows are skipped in any of them."""
    pg = db.dialect == "postgresql"
    people = [f"p{i:03d}" for i in range(250)]
    first = people[:100:7]
    _instances(db, first, "completed")  # already there: these clash
    rows = [
        {"workspace_id": "default", "instance_id": f"j:{p}:1", "journey_id": "j", "version": 1,
         "person_id": p, "entry_number": 1, "status": "completed", "state": "{}",
         "entered_at": T0, "updated_at": T0, "ended_at": T0}
        for p in people
    ]  # fmt: skip
    with db.write() as conn:
        insert_rows(
            conn, InstanceRow.__table__, rows, postgres=pg,
            conflict=["workspace_id", "instance_id"],
        )  # fmt: skip
    with db.read() as conn:
        stored = conn.execute(select(InstanceRow.person_id).order_by(InstanceRow.id)).all()
    assert [r.person_id for r in stored] == first + [p for p in people if p not in first]
    at = T0 + timedelta(seconds=1)
    records = [
        ("default", "j", 1, f"j:{p}:1", p, RecordKind.REACHED, "s1", "send", None, None, at)
        for p in people
    ]
    with db.write() as conn:
        write_records(conn, records, postgres=pg)
    with db.read() as conn:
        kept = conn.execute(select(StepRecordRow.person_id).order_by(StepRecordRow.id)).all()
        n = conn.scalar(select(StepCountRow.n).where(StepCountRow.kind == "reached"))
    assert [r.person_id for r in kept] == people
    assert n == 250


def test_record_rows_carry_plain_text_for_the_drivers() -> None:
    """Enum members as such cost SQLite's driver an adaptation lookup per value."""
    record = StepRecord(RecordKind.REACHED, "j:p:1", "j", 1, "p", T0, step_id="s1")
    row = record_row("default", record)
    assert row[COLUMNS.index("kind")] == "reached"
    assert type(row[COLUMNS.index("kind")]) is str
    assert all(type(TEXT[m]) is str for m in (*RecordKind, *Status))


def test_a_statement_built_once_takes_its_keys_when_it_runs(db: Database) -> None:
    pg = db.dialect == "postgresql"
    _instances(db, [f"a{i}" for i in range(10)], "active")
    query = select(InstanceRow.person_id).where(InstanceRow.workspace_id == bindparam("ws"))
    by_person = probe(query, InstanceRow.person_id, Later("keys"), pg)
    by_id = select(InstanceRow.person_id).where(
        member_of(InstanceRow.id, Later("keys", integer=True), pg)
    )
    with db.read() as conn:
        ids = dict(conn.execute(select(InstanceRow.person_id, InstanceRow.id)).all())
        first = conn.scalars(by_person, {"ws": "default", "keys": keys_json(["a1", "a2"])}).all()
        second = conn.scalars(by_person, {"ws": "default", "keys": keys_json(["a9", "zz"])}).all()
        other = conn.scalars(by_person, {"ws": "other", "keys": keys_json(["a1"])}).all()
        numbered = conn.scalars(by_id, {"keys": keys_json([ids["a3"], ids["a4"]])}).all()
    assert sorted(first) == ["a1", "a2"]
    assert second == ["a9"]
    assert other == []
    assert sorted(numbered) == ["a3", "a4"]
