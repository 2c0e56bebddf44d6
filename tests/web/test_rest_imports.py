"""``/api/v1/imports``: an uploaded file is imported in the background, whole or not at all."""

from __future__ import annotations

import time
from typing import Any

import duckdb
from fastapi.testclient import TestClient

from dashboard_fixtures import Site, Tenant
from wayline.storage.eventstore import EventStore


def events_csv(rows: int, *, bad_row: int | None = None) -> bytes:
    lines = ["user_id,event,timestamp,revenue"]
    for i in range(rows):
        stamp = "yesterday at noon" if i + 2 == bad_row else f"2024-05-{1 + i % 28:02d}T10:00:00Z"
        lines.append(f"user-{i % 7},Order Completed,{stamp},{i}.50")
    return ("\n".join(lines) + "\n").encode()


def upload(
    client: TestClient, tenant: Tenant, name: str, data: bytes, **form: str
) -> dict[str, Any]:
    r = client.post(
        "/api/v1/imports", headers=tenant.headers, files={"file": (name, data)}, data=form
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_for(
    client: TestClient, tenant: Tenant, job_id: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/imports/{job_id}", headers=tenant.headers)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def stored(site: Site, workspace_id: str) -> int:
    path = site.settings.resolved_analytics_path
    if not path.exists():
        return 0
    with EventStore(path, read_only=True) as store:
        return store.count(workspace_id)


def test_an_upload_reaches_done_and_its_events_are_queryable(site: Site) -> None:
    job = upload(site.client, site.a, "orders.csv", events_csv(40))
    assert job["status"] in ("queued", "waiting", "running", "done")
    assert job["bytes_total"] == len(events_csv(40))
    done = wait_for(site.client, site.a, job["id"])
    assert done["status"] == "done", done
    assert done["percent"] == 100.0 and done["bytes_done"] == done["bytes_total"]
    assert done["rows_done"] == 40 and done["events_stored"] == 40
    assert done["format"] == "csv" and done["finished_at"] is not None
    assert stored(site, site.a.workspace_id) == 40
    assert stored(site, site.b.workspace_id) == 0
    # The API reads what was imported: the buyers are customers of this workspace only.
    mine = site.client.get("/api/v1/customers?q=user-3", headers=site.a.headers).json()
    assert [c["person_id"] for c in mine["items"]] == ["user-3"]
    assert (
        site.client.get("/api/v1/customers?q=user-3", headers=site.b.headers).json()["total"] == 0
    )
    listed = site.client.get("/api/v1/imports", headers=site.a.headers).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]


def test_a_broken_row_in_the_middle_stores_nothing_and_names_row_and_column(site: Site) -> None:
    job = upload(site.client, site.a, "events.csv", events_csv(200, bad_row=101))
    failed = wait_for(site.client, site.a, job["id"])
    assert failed["status"] == "failed"
    assert "row 101" in failed["error"] and "field 'timestamp'" in failed["error"]
    assert "yesterday at noon" in failed["error"]
    assert failed["events_stored"] == 0
    assert stored(site, site.a.workspace_id) == 0


def test_the_same_file_twice_is_refused_whole(site: Site) -> None:
    data = events_csv(10)
    assert (
        wait_for(site.client, site.a, upload(site.client, site.a, "a.csv", data)["id"])["status"]
        == "done"
    )
    again = wait_for(site.client, site.a, upload(site.client, site.a, "b.csv", data)["id"])
    assert again["status"] == "failed" and "already imported" in again["error"]
    assert stored(site, site.a.workspace_id) == 10


def test_a_locked_store_makes_the_job_wait_then_finish(site: Site) -> None:
    """Another process holding DuckDB's write lock: the job says 'waiting' and retries."""
    import multiprocessing

    path = site.settings.resolved_analytics_path
    EventStore(path).close()
    ready = multiprocessing.get_context("spawn").Event()
    release = multiprocessing.get_context("spawn").Event()
    holder = multiprocessing.get_context("spawn").Process(
        target=_hold_lock, args=(str(path), ready, release)
    )
    holder.start()
    try:
        assert ready.wait(30)
        job = upload(site.client, site.a, "orders.csv", events_csv(5))
        deadline = time.monotonic() + 20
        while (
            site.client.get(f"/api/v1/imports/{job['id']}", headers=site.a.headers).json()["status"]
            != "waiting"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        release.set()
        holder.join(30)
    assert wait_for(site.client, site.a, job["id"])["status"] == "done"


def _hold_lock(path: str, ready: Any, release: Any) -> None:
    con = duckdb.connect(path)
    ready.set()
    release.wait(60)
    con.close()


def test_bad_options_are_refused_before_anything_is_saved(site: Site) -> None:
    c = site.client
    r = c.post(
        "/api/v1/imports",
        headers=site.a.headers,
        files={"file": ("x.csv", b"a,b\n1,2\n")},
        data={"format": "excel"},
    )
    assert r.status_code == 400 and r.json()["field"] == "format"
    r = c.post(
        "/api/v1/imports",
        headers=site.a.headers,
        files={"file": ("x.csv", b"a,b\n1,2\n")},
        data={"format": "shopify", "mapping": "user_id=email"},
    )
    assert r.status_code == 400 and r.json()["field"] == "mapping"
    r = c.post("/api/v1/imports", headers=site.a.headers, files={"file": ("x.csv", b"")})
    assert r.status_code == 400 and r.json()["field"] == "file"
    r = c.post("/api/v1/imports", headers=site.a.headers, data={"format": "csv"})
    assert r.status_code == 422 and "file" in r.json()["field"]
    assert c.get("/api/v1/imports", headers=site.a.headers).json()["total"] == 0
    assert not (site.settings.home / "imports" / site.a.workspace_id).exists() or not any(
        (site.settings.home / "imports" / site.a.workspace_id).iterdir()
    )


def test_a_mapping_names_the_columns(site: Site) -> None:
    data = b"email,what,when\nann@example.com,Signed Up,2024-05-01T10:00:00Z\n"
    job = upload(
        site.client,
        site.a,
        "signups.csv",
        data,
        mapping='{"user_id": "email", "event": "what", "timestamp": "when"}',
    )
    done = wait_for(site.client, site.a, job["id"])
    assert done["status"] == "done", done
    assert done["events_stored"] == 1


def test_another_workspace_cannot_see_a_job(site: Site) -> None:
    job = upload(site.client, site.a, "orders.csv", events_csv(3))
    wait_for(site.client, site.a, job["id"])
    r = site.client.get(f"/api/v1/imports/{job['id']}", headers=site.b.headers)
    assert r.status_code == 404
    assert site.client.get("/api/v1/imports", headers=site.b.headers).json()["total"] == 0
    assert site.client.get(f"/api/v1/imports/{job['id']}").status_code == 401
