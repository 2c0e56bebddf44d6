"""Identity resolution applied to the DuckDB event store: keeps ``events.person_id`` right.

The rules are those of :mod:`wayline.events.identity` (read its docstring first); a row's person
is the person of its ``user_id`` when it has one, else of its ``anonymous_id``. This module keeps
these tables next to ``events``:

``identity_links(workspace_id, kind, user_id, other_id, link_at)``
    Every distinct link seen, with the time the rules look at (an identify link's earliest, an
    alias link's latest): the facts the mapping is computed from.
``identities(workspace_id, alias_id, person_id)``
    The mapping, for the ids that do not map to themselves (most ids do).
``identity_user_ids(workspace_id, user_id)``
    Ids seen as a lone ``userId`` (rows without ``anonymousId``): they are in no link, but if
    such an id ever changes person its rows must be found.
``identity_spans(workspace_id, anonymous_id, first_rowid)``
    Where each anonymous id's anonymous rows start, so the rows of a visitor who identifies are
    looked for from there on, not in the whole table: a visitor usually identifies soon after
    browsing, so that is a scan of the last few row groups instead of ten million rows.
``identity_watermarks(workspace_id, last_rowid, last_message_id, rows_upto)``
    How far ``events`` has been read, so each call reads only the rows added since.

The watermark is DuckDB's ``rowid``, not ``received_at``: rowids grow with every append and an
``UPDATE`` keeps them, whereas ``received_at`` does not order appends (the mover commits batches
out of order, an importer may keep historical times), so a time watermark would skip rows.
Rowids do shift when a checkpoint compacts row groups after a ``DELETE``, and deleted rows take
their links with them; the watermark therefore also records the ``message_id`` of the row it
points at and how many rows lay up to it. When that row is no longer there or the count
dropped (any ``DELETE``, e.g. a sample store replaced), the next call forgets the workspace's
facts and re-reads it from scratch (correct, and as fast as a bulk load). Appends must not run
on another connection while a call runs (Wayline appends and resolves in one process, one after
the other).

A call works in set-based SQL: it extracts the links of the new rows, keeps those that are new
or change a stored time, works out which ids they can affect (the ids named, and every id of the
persons those belong to now), and recomputes the mapping of those ids only. Only the alias
groups (a union-find over the rare alias ids) go through Python, through the pure core; the rest
— who first owned an anonymous id, which ids are users — is a ``GROUP BY``. Then ``person_id`` is
rewritten: on the old rows of the ids that moved (an anonymous visitor's earlier browsing becomes
the customer's), and on every new row (whatever its appender wrote). All of it in one
transaction: a failure leaves the store as it was.

Performance notes, for DuckDB: statements on a batch filter ``events`` by a ``rowid`` range,
which DuckDB prunes to the row groups concerned; joins against the big side tables
(``identity_links``, ``identities``) first cut them down with ``IN (small set)``, which DuckDB
plans as a semi-join hashing the small side; rewrites match one plain column (``anonymous_id``
or ``user_id``) rather than ``coalesce(user_id, anonymous_id)``, several times faster to scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from wayline.events.identity import Link, LinkKind, alias_canonicals
from wayline.storage.eventstore import EventStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_TABLES = (
    """CREATE TABLE IF NOT EXISTS identity_links (
        workspace_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        other_id VARCHAR NOT NULL,
        link_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS identities (
        workspace_id VARCHAR NOT NULL,
        alias_id VARCHAR NOT NULL,
        person_id VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS identity_user_ids (
        workspace_id VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS identity_spans (
        workspace_id VARCHAR NOT NULL,
        anonymous_id VARCHAR NOT NULL,
        first_rowid BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS identity_watermarks (
        workspace_id VARCHAR PRIMARY KEY,
        last_rowid BIGINT NOT NULL,
        last_message_id VARCHAR NOT NULL,
        rows_upto BIGINT NOT NULL
    )""",
)
# The facts: forgotten when a workspace is read afresh.
_FACT_TABLES = ("identity_links", "identity_user_ids", "identity_spans")
_TEMP_TABLES = (
    "_id_new",
    "_id_changed",
    "_id_affected",
    "_id_links",
    "_id_mapping",
    "_id_moved",
    "_id_batch",
)

# In every statement below: $1 the workspace, and for those reading events, $2 < rowid <= $3.

# The links the new rows carry: identify links from every row with both ids, alias links from
# alias calls. An identify link keeps its earliest time, an alias link its latest.
_NEW_LINKS = """
CREATE OR REPLACE TEMP TABLE _id_new AS
SELECT kind, user_id, other_id,
       CASE WHEN kind = 'alias' THEN max(seen_at) ELSE min(seen_at) END AS link_at
FROM (
    SELECT 'identify' AS kind, user_id, anonymous_id AS other_id, "timestamp" AS seen_at
    FROM events
    WHERE workspace_id = $1 AND rowid > $2 AND rowid <= $3
      AND user_id IS NOT NULL AND anonymous_id IS NOT NULL
    UNION ALL
    SELECT 'alias', user_id, json_extract_string(properties, '$.previousId'), "timestamp"
    FROM events
    WHERE workspace_id = $1 AND rowid > $2 AND rowid <= $3
      AND "type" = 'alias' AND user_id IS NOT NULL
)
WHERE other_id IS NOT NULL AND other_id <> user_id
GROUP BY kind, user_id, other_id
"""

# New lone user ids and new anonymous ids' first rows. The inner IN keeps the known ids to
# those of the batch before NOT IN hashes them: a hash of the batch, not of every customer.
_NEW_USER_IDS = """
INSERT INTO identity_user_ids
WITH batch AS (
    SELECT DISTINCT user_id FROM events
    WHERE workspace_id = $1 AND rowid > $2 AND rowid <= $3
      AND user_id IS NOT NULL AND anonymous_id IS NULL
)
SELECT $1, user_id FROM batch
WHERE user_id NOT IN (
    SELECT user_id FROM identity_user_ids
    WHERE workspace_id = $1 AND user_id IN (SELECT user_id FROM batch))
"""

_NEW_SPANS = """
INSERT INTO identity_spans
WITH batch AS (
    SELECT anonymous_id, min(rowid) AS first_rowid FROM events
    WHERE workspace_id = $1 AND rowid > $2 AND rowid <= $3
      AND user_id IS NULL AND anonymous_id IS NOT NULL
    GROUP BY anonymous_id
)
SELECT $1, anonymous_id, first_rowid FROM batch
WHERE anonymous_id NOT IN (
    SELECT anonymous_id FROM identity_spans
    WHERE workspace_id = $1 AND anonymous_id IN (SELECT anonymous_id FROM batch))
"""

# Of the new links, those that are new or change a stored time.
_CHANGED_LINKS = """
CREATE OR REPLACE TEMP TABLE _id_changed AS
SELECT n.* FROM _id_new n
LEFT JOIN (
    SELECT * FROM identity_links
    WHERE workspace_id = $1 AND other_id IN (SELECT other_id FROM _id_new)
) l ON l.kind = n.kind AND l.user_id = n.user_id AND l.other_id = n.other_id
WHERE l.link_at IS NULL
   OR (n.kind = 'identify' AND n.link_at < l.link_at)
   OR (n.kind = 'alias' AND n.link_at > l.link_at)
"""

_STORE_CHANGED_LINKS = (
    """DELETE FROM identity_links l USING _id_changed c
       WHERE l.workspace_id = $1 AND l.kind = c.kind
         AND l.user_id = c.user_id AND l.other_id = c.other_id""",
    "INSERT INTO identity_links SELECT $1, * FROM _id_changed",
)

# The ids whose person may change: the ids the changed links name, the persons those ids
# belong to now, and every id of those persons ($2: every mapped id, when reading afresh).
_AFFECTED = """
CREATE OR REPLACE TEMP TABLE _id_affected AS
WITH seeds AS (
    SELECT user_id AS id FROM _id_changed UNION SELECT other_id FROM _id_changed
), persons AS (
    SELECT coalesce(m.person_id, s.id) AS person_id
    FROM seeds s LEFT JOIN (
        SELECT * FROM identities
        WHERE workspace_id = $1 AND alias_id IN (SELECT id FROM seeds)
    ) m ON m.alias_id = s.id
)
SELECT id FROM seeds
UNION SELECT person_id FROM persons
UNION SELECT alias_id FROM identities
  WHERE workspace_id = $1 AND ($2 OR person_id IN (SELECT person_id FROM persons))
"""

# Every link naming an affected id, read once for rules 2-4. Rule 2 needs every alias link of
# the affected ids' groups: those groups lie within the affected ids (a group is one person).
_AFFECTED_LINKS = """
CREATE OR REPLACE TEMP TABLE _id_links AS
SELECT kind, user_id, other_id, link_at FROM identity_links
WHERE workspace_id = $1 {touching}
"""
_TOUCHING_AFFECTED = """
  AND (user_id IN (SELECT id FROM _id_affected) OR other_id IN (SELECT id FROM _id_affected))"""
_AFFECTED_ALIASES = (
    "SELECT user_id, other_id, epoch_us(link_at) FROM _id_links WHERE kind = 'alias'"
)

# The new person of every affected id (rules 2-4 of wayline.events.identity; _id_alias holds
# rule 2, computed in Python). An owner outside the affected ids keeps its current person.
_MAPPING = """
CREATE OR REPLACE TEMP TABLE _id_mapping AS
WITH users AS (
    SELECT DISTINCT user_id AS id FROM _id_links
    WHERE user_id IN (SELECT id FROM _id_affected)
), owners AS (
    SELECT other_id AS id, first(user_id ORDER BY link_at, user_id) AS owner
    FROM _id_links
    WHERE kind = 'identify' AND other_id IN (SELECT id FROM _id_affected)
    GROUP BY other_id
), current AS (
    SELECT alias_id, person_id FROM identities
    WHERE workspace_id = $1
      AND alias_id IN (SELECT id FROM _id_affected UNION SELECT owner FROM owners)
)
SELECT a.id,
    CASE
        WHEN al.person_id IS NOT NULL THEN al.person_id
        WHEN u.id IS NOT NULL THEN a.id
        WHEN o.owner IS NOT NULL THEN coalesce(
            oal.person_id,
            CASE WHEN oa.id IS NOT NULL THEN o.owner ELSE coalesce(oc.person_id, o.owner) END
        )
        ELSE a.id
    END AS person_id,
    coalesce(c.person_id, a.id) AS old_person_id
FROM _id_affected a
LEFT JOIN _id_alias al ON al.id = a.id
LEFT JOIN users u ON u.id = a.id
LEFT JOIN owners o ON o.id = a.id
LEFT JOIN _id_alias oal ON oal.id = o.owner
LEFT JOIN _id_affected oa ON oa.id = o.owner
LEFT JOIN current oc ON oc.alias_id = o.owner
LEFT JOIN current c ON c.alias_id = a.id
"""

_STORE_MAPPING = (
    """DELETE FROM identities
       WHERE workspace_id = $1 AND alias_id IN (SELECT id FROM _id_affected)""",
    "INSERT INTO identities SELECT $1, id, person_id FROM _id_mapping WHERE person_id <> id",
    """CREATE OR REPLACE TEMP TABLE _id_moved AS
       SELECT id, person_id FROM _id_mapping WHERE person_id <> old_person_id""",
)

# Old rows of the moved ids. Anonymous rows: from the first anonymous row of any moved id on.
_MOVED_FROM_ROWID = """
SELECT min(first_rowid) FROM identity_spans
WHERE workspace_id = $1 AND anonymous_id IN (SELECT id FROM _id_moved)
"""
_REWRITE_ANONYMOUS = """
UPDATE events SET person_id = m.person_id
FROM _id_moved m
WHERE events.workspace_id = $1 AND events.rowid > $2 AND events.rowid <= $3
  AND events.user_id IS NULL AND events.anonymous_id = m.id
  AND events.person_id <> m.person_id
"""
# Rows keyed by user_id move only when a moved id is a user id, an alias id or a lone userId:
# rare (an alias call), and a scan of the whole table, so checked first.
_MOVED_USERS = """
SELECT EXISTS (
    SELECT 1 FROM _id_links
    WHERE user_id IN (SELECT id FROM _id_moved)
       OR (kind = 'alias' AND other_id IN (SELECT id FROM _id_moved))
) OR EXISTS (
    SELECT 1 FROM identity_user_ids
    WHERE workspace_id = $1 AND user_id IN (SELECT id FROM _id_moved)
)
"""
_REWRITE_USERS = """
UPDATE events SET person_id = m.person_id
FROM _id_moved m
WHERE events.workspace_id = $1 AND events.rowid > $2 AND events.rowid <= $3
  AND events.user_id = m.id
  AND events.person_id <> m.person_id
"""

# New rows: the person the mapping gives, whatever their appender wrote. {mapped} is the
# (id, person_id) mapping to join: all of it on a full read, else only the batch's ids.
_REWRITE_NEW = """
UPDATE events SET person_id = x.person_id
FROM (
    SELECT e.rowid AS rid, e.person_id AS old_person_id,
        CASE WHEN e.user_id IS NOT NULL THEN coalesce(mu.person_id, e.user_id)
             ELSE coalesce(ma.person_id, e.anonymous_id) END AS person_id
    FROM events e
    LEFT JOIN {mapped} mu ON mu.id = e.user_id
    LEFT JOIN {mapped} ma ON ma.id = e.anonymous_id
    WHERE e.workspace_id = $1 AND e.rowid > $2 AND e.rowid <= $3
) x
WHERE events.rowid > $2 AND events.rowid <= $3 AND events.rowid = x.rid
  AND x.person_id <> x.old_person_id
"""
_ALL_MAPPED = "(SELECT alias_id AS id, person_id FROM identities WHERE workspace_id = $1)"
_BATCH_MAPPED = """
CREATE OR REPLACE TEMP TABLE _id_batch AS
SELECT alias_id AS id, person_id FROM identities
WHERE workspace_id = $1 AND alias_id IN (
    SELECT coalesce(user_id, anonymous_id) FROM events
    WHERE workspace_id = $1 AND rowid > $2 AND rowid <= $3)
"""


def ensure_identity_tables(store: EventStore) -> None:
    """Create the identity tables if missing (idempotent)."""
    for ddl in _TABLES:
        store.con.execute(ddl)


def _scalar(store: EventStore, sql: str, params: Iterable[Any] = ()) -> Any:
    row = store.con.execute(sql, list(params)).fetchone()
    return None if row is None else row[0]


def _rows_upto(store: EventStore, rowid: int) -> int:
    return int(_scalar(store, "SELECT count(*) FROM events WHERE rowid <= ?", [rowid]))


def _start_rowid(store: EventStore, workspace_id: str) -> int:
    """The rowid after which rows are new for this workspace; -1 to read everything."""
    row = store.con.execute(
        """SELECT last_rowid, last_message_id, rows_upto FROM identity_watermarks
           WHERE workspace_id = ?""",
        [workspace_id],
    ).fetchone()
    if row is None:
        return -1
    last_rowid, last_message_id, rows_upto = int(row[0]), str(row[1]), int(row[2])
    there = _scalar(store, "SELECT message_id FROM events WHERE rowid = ?", [last_rowid])
    if there == last_message_id and _rows_upto(store, last_rowid) == rows_upto:
        return last_rowid
    # Rows were deleted (fewer rows up to the watermark), maybe with rowids shifted (another
    # row, or none, at the watermark): the links of the deleted rows must go, and rows may hide
    # below the watermark. Forget the facts and read the workspace again; every row then counts
    # as new and gets the recomputed person.
    for table in _FACT_TABLES:
        store.con.execute(f"DELETE FROM {table} WHERE workspace_id = ?", [workspace_id])
    return -1


def _alias_table(store: EventStore) -> pa.Table:
    """Rule 2 for the alias groups of the affected ids, from the pure core."""
    rows = store.con.execute(_AFFECTED_ALIASES).fetchall()
    # Times come as epoch microseconds: exact, and no pytz needed to fetch a TIMESTAMPTZ.
    links = [
        Link(LinkKind.ALIAS, user_id, other_id, _EPOCH + timedelta(microseconds=micros))
        for user_id, other_id, micros in rows
    ]
    canon = alias_canonicals(links)
    return pa.table(
        {"id": list(canon), "person_id": list(canon.values())},
        schema=pa.schema([("id", pa.string()), ("person_id", pa.string())]),
    )


def resolve_identities(store: EventStore, workspace_id: str) -> int:
    """Bring ``events.person_id`` of one workspace up to date with the links in its events.

    Reads only the rows appended since the previous call, and rewrites the rows (old or new)
    whose person changed, in one transaction. Idempotent: a second call changes nothing.
    Called inside a transaction the caller opened on ``store.con`` (to append a batch and
    resolve it atomically), it works within that transaction and leaves the commit (or the
    rollback, if it raises) to the caller.

    Returns the number of event rows whose ``person_id`` changed.
    """
    con = store.con
    if _in_transaction(store):
        return _resolve_in_transaction(store, workspace_id)
    con.execute("BEGIN")
    try:
        changed = _resolve_in_transaction(store, workspace_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return changed


def _in_transaction(store: EventStore) -> bool:
    """Whether a transaction is open on the store's connection. DuckDB has no flag for it and a
    failed ``BEGIN`` aborts the open transaction, so: outside a transaction every statement is
    a transaction of its own, with a new id; inside one, the id stays."""
    first = _scalar(store, "SELECT txid_current()")
    return bool(first == _scalar(store, "SELECT txid_current()"))


def _resolve_in_transaction(store: EventStore, workspace_id: str) -> int:
    ensure_identity_tables(store)
    changed = _resolve(store, workspace_id)
    # On failure the rollback takes the temporary tables away with everything else.
    for name in _TEMP_TABLES:
        store.con.execute(f"DROP TABLE IF EXISTS {name}")
    return changed


def _resolve(store: EventStore, workspace_id: str) -> int:
    con = store.con
    start = _start_rowid(store, workspace_id)
    end = _scalar(store, "SELECT max(rowid) FROM events")
    if end is None or int(end) <= start:
        return 0
    end = int(end)
    full = start < 0
    window = [workspace_id, start, end]
    for sql in (_NEW_LINKS, _NEW_USER_IDS, _NEW_SPANS):
        con.execute(sql, window)
    con.execute(_CHANGED_LINKS, [workspace_id])
    updated = 0
    if full or _scalar(store, "SELECT count(*) FROM _id_changed"):
        _remap(store, workspace_id, full=full)
        if not full:  # on a full read every row is new: the rewrite of new rows covers all
            updated += _rewrite_moved(store, workspace_id, start)
    if full:
        mapped = _ALL_MAPPED
    else:  # the mapping of the batch's ids only: one scan of identities, not one per join
        con.execute(_BATCH_MAPPED, window)
        mapped = "_id_batch"
    updated += int(_scalar(store, _REWRITE_NEW.format(mapped=mapped), window) or 0)
    last_message_id = _scalar(store, "SELECT message_id FROM events WHERE rowid = ?", [end])
    con.execute(
        "INSERT OR REPLACE INTO identity_watermarks VALUES (?, ?, ?, ?)",
        [workspace_id, end, last_message_id, _rows_upto(store, end)],
    )
    return updated


def _remap(store: EventStore, workspace_id: str, *, full: bool) -> None:
    """Store the changed links, recompute the mapping of the ids they affect, and leave the ids
    that moved in ``_id_moved``."""
    con = store.con
    for sql in _STORE_CHANGED_LINKS:
        con.execute(sql, [workspace_id])
    con.execute(_AFFECTED, [workspace_id, full])
    # On a full read every id is affected: no need to hash them all to filter nothing.
    touching = "" if full else _TOUCHING_AFFECTED
    con.execute(_AFFECTED_LINKS.format(touching=touching), [workspace_id])
    con.register("_id_alias", _alias_table(store))
    try:
        con.execute(_MAPPING, [workspace_id])
    finally:
        con.unregister("_id_alias")
    for sql in _STORE_MAPPING:
        con.execute(sql, [workspace_id] if "$1" in sql else [])


def _rewrite_moved(store: EventStore, workspace_id: str, start: int) -> int:
    """Rewrite the rows before ``start`` of the ids that moved; return how many changed."""
    updated = 0
    first = _scalar(store, _MOVED_FROM_ROWID, [workspace_id])
    if first is not None:
        rows = [workspace_id, int(first) - 1, start]
        updated += int(_scalar(store, _REWRITE_ANONYMOUS, rows) or 0)
    if _scalar(store, _MOVED_USERS, [workspace_id]):
        updated += int(_scalar(store, _REWRITE_USERS, [workspace_id, -1, start]) or 0)
    return updated


def person_ids_for(store: EventStore, workspace_id: str, ids: Iterable[str]) -> dict[str, str]:
    """The current person id of each given id (an id the store does not map is its own)."""
    wanted = list(dict.fromkeys(ids))
    exists = _scalar(
        store,
        """SELECT count(*) FROM duckdb_tables()
           WHERE table_name = 'identities' AND schema_name = 'main' AND NOT temporary""",
    )
    if not wanted or not exists:  # no mapping yet (or a read-only store never resolved)
        return {node: node for node in wanted}
    rows = store.con.execute(
        """SELECT alias_id, person_id FROM identities
           WHERE workspace_id = ? AND alias_id IN (SELECT unnest(?::VARCHAR[]))""",
        [workspace_id, wanted],
    ).fetchall()
    found = dict(rows)
    return {node: found.get(node, node) for node in wanted}
