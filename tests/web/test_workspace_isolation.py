"""One workspace's key or session can never read or change another workspace's data — checked on
every route the app has, found by walking ``app.routes`` (so routes added later are covered).

Workspace A ("alpha") gets one object of each kind through the public interfaces (a journey
draft, a template, an import, a customer sent through the tracking API, an API key, channel
credentials), each with the marker ``alphasecret`` in its content. Then, for every REST route
and method, workspace B's key aims at A's objects: object routes must answer 404 (or 403), no
answer to B may contain the marker, and everything A can read afterwards is exactly what it
read before. Routes that take no object still must refuse a caller without a key (401), and every
route must depend on :func:`wayline.api.rest.deps.workspace_context` — the structural check that
fails first when someone adds a route and forgets it. The dashboard's pages get the same
treatment with B's logged-in session.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from dashboard_fixtures import Site
from wayline.api.rest.deps import workspace_context
from wayline.storage.eventstore import EventStore
from wayline.storage.mover import Mover
from wayline.web.auth import dashboard_session

MARKER = "alphasecret"
# The ids carry no marker: B sends them itself, and a 404 may name what was not found.
JOURNEY_ID = "cart-of-a"
TEMPLATE = "thanks_of_a"
CUSTOMER = "ann-of-a"
#: Answers that keep another workspace's object hidden.
HIDDEN = (403, 404)
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    dependant: Dependant
    module: str

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _endpoints(site_app: Any) -> list[Endpoint]:
    found = []
    for route in iter_route_contexts(site_app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or route.path is None:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append(Endpoint(method, route.path, dependant, route.endpoint.__module__))
    return found


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def rest_endpoints(site: Site) -> list[Endpoint]:
    return [e for e in _endpoints(site.app) if e.path.startswith("/api/v1/")]


def dashboard_endpoints(site: Site) -> list[Endpoint]:
    # Log-in and first-run set-up are the only pages meant for visitors without a session.
    return [
        e
        for e in _endpoints(site.app)
        if e.module.startswith("wayline.web.") and e.module != "wayline.web.auth"
    ]


# -- A's objects ----------------------------------------------------------------------------


def journey_doc(name: str = f"Cart ({MARKER})") -> dict[str, Any]:
    return {
        "id": JOURNEY_ID,
        "name": name,
        "trigger": {"event": "Checkout Started"},
        "goal": {"event": "Order Completed", "within": "3d"},
        "steps": [
            {"id": "email", "type": "send", "channel": "email", "template": "welcome",
             "next": "pause"},
            {"id": "pause", "type": "delay", "duration": "1h"},
        ],
    }  # fmt: skip


def template_doc(title: str = f"Thanks ({MARKER})") -> dict[str, Any]:
    return {
        "name": TEMPLATE,
        "title": title,
        "trigger": "order",
        "params": {"headline": "Thanks"},
        "email": {"subject": "{{ params.headline }}", "html": f"<p>{MARKER}</p>"},
    }


SMTP = {
    "host": f"smtp.{MARKER}.example",
    "port": 587,
    "from_address": f"hello@{MARKER}.example",
    "username": "mailer",
    "password": f"{MARKER}-password-1234",
}


@dataclass
class Objects:
    """A's objects, by the path parameter names that address them."""

    ids: dict[str, str]
    """Path parameter → A's object, for parameters naming an object of the workspace."""
    shared: dict[str, str]
    """Path parameter → a value every workspace has its own of (a channel's settings)."""
    bodies: dict[str, Any]
    """``METHOD path`` → a valid JSON body, so a route that did find A's object would act."""


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201, 202)), f"{r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def _move_inbox(site: Site) -> None:
    with EventStore(site.settings.resolved_analytics_path) as store:
        mover = Mover(site.db, store)
        while mover.move_batch():
            pass


def make_alpha_objects(site: Site) -> Objects:
    c, h = site.client, site.a.headers
    key = _ok(c.post("/api/v1/api-keys", json={"name": f"{MARKER} reporting"}, headers=h))
    _ok(c.post("/api/v1/journeys", json=journey_doc(), headers=h))
    _ok(c.post("/api/v1/templates", json=template_doc(), headers=h))
    _ok(c.put("/api/v1/settings/channels/email", json=SMTP, headers=h))
    # A customer the way a store sends one: through the tracking API with A's write key.
    for call, body in (
        ("identify", {"userId": CUSTOMER, "traits": {"email": f"ann@{MARKER}.example"}}),
        ("track", {"userId": CUSTOMER, "event": "Checkout Started"}),
    ):
        r = c.post(f"/v1/{call}", json={**body, "writeKey": site.a.write_key})
        assert r.status_code == 200, r.text
    _move_inbox(site)
    csv = f"user_id,event,timestamp\n{CUSTOMER},Order Completed,2024-05-01T10:00:00Z\n"
    job = _ok(
        c.post(
            "/api/v1/imports",
            headers=h,
            files={"file": (f"{MARKER}.csv", csv.encode())},
            data={"format": "csv"},
        ),
        202,
    )
    deadline = time.monotonic() + 60
    while (status := _ok(c.get(f"/api/v1/imports/{job['id']}", headers=h))["status"]) not in (
        "done",
        "failed",
    ):
        assert time.monotonic() < deadline, f"the import is still {status}"
        time.sleep(0.05)
    assert status == "done"
    assert _ok(c.get(f"/api/v1/customers/{CUSTOMER}", headers=h))
    return Objects(
        ids={
            "key_id": key["id"],
            "journey_id": JOURNEY_ID,
            "name": TEMPLATE,
            "person_id": CUSTOMER,
            "job_id": job["id"],
        },
        shared={"channel": "email", "kind": "csv", "solution_id": "abandoned_cart_follow_up"},
        bodies={
            "PUT /api/v1/journeys/{journey_id}": journey_doc("hijacked"),
            "PUT /api/v1/templates/{name}": template_doc("hijacked"),
            "POST /api/v1/templates/{name}/preview": {},
            "PATCH /api/v1/customers/{person_id}/consent": {"email": False},
            "PUT /api/v1/settings/channels/{channel}": {
                **SMTP,
                "host": "smtp.b.example",
                "from_address": "hello@b.example",
                "password": "b-password-5678",
            },
        },
    )


@pytest.fixture
def alpha(site: Site) -> Objects:
    return make_alpha_objects(site)


def _fill(endpoint: Endpoint, objects: Objects) -> str | None:
    path = endpoint.path
    for name in endpoint.params:
        value = objects.ids.get(name) or objects.shared.get(name)
        if value is None:
            return None
        path = re.sub(r"{" + re.escape(name) + r"(:[^}]*)?}", value, path)
    return path


def _targets_an_object(endpoint: Endpoint, objects: Objects) -> bool:
    return any(p in objects.ids for p in endpoint.params)


def _request(client: TestClient, endpoint: Endpoint, url: str, objects: Objects, **kw: Any) -> Any:
    body = objects.bodies.get(str(endpoint))
    if body is None and endpoint.method in ("POST", "PUT", "PATCH"):
        body = {}
    return client.request(endpoint.method, url, json=body, **kw)


def _a_view(site: Site, objects: Objects) -> dict[str, Any]:
    """Everything A can read through the API, minus what A's own reading changes."""
    view: dict[str, Any] = {}
    for e in rest_endpoints(site):
        if e.method != "GET":
            continue
        url = _fill(e, objects)
        if url is None:
            continue
        r = site.client.get(url, headers=site.a.headers)
        text = re.sub(r'"last_used_at":\s*"[^"]*"', "", r.text)
        view[url] = (r.status_code, text)
    return view


# -- the checks -----------------------------------------------------------------------------


def test_every_rest_route_depends_on_the_callers_workspace(site: Site) -> None:
    endpoints = rest_endpoints(site)
    assert len(endpoints) > 10, "the REST API's routes were not found"
    missing = [str(e) for e in endpoints if not _depends_on(e.dependant, workspace_context)]
    assert missing == [], f"routes without the Workspace dependency: {missing}"


def test_every_dashboard_page_needs_a_session(site: Site) -> None:
    endpoints = dashboard_endpoints(site)
    assert any(e.path == "/map" for e in endpoints), "the dashboard's pages were not found"
    missing = [str(e) for e in endpoints if not _depends_on(e.dependant, dashboard_session)]
    assert missing == [], f"pages without the Session dependency: {missing}"


def test_no_rest_route_answers_without_a_valid_key(site: Site, alpha: Objects) -> None:
    anonymous = TestClient(site.app, follow_redirects=False)
    for e in rest_endpoints(site):
        url = _fill(e, alpha) or _PARAM.sub("x", e.path)
        for headers in ({}, {"Authorization": "Bearer wl_sk_not-a-key"}):
            r = _request(anonymous, e, url, alpha, headers=headers)
            assert r.status_code == 401, f"{e} with {headers or 'no key'}: {r.status_code}"
            assert MARKER not in r.text


def test_another_workspaces_key_reaches_nothing_of_a(site: Site, alpha: Objects) -> None:
    before = _a_view(site, alpha)
    assert any(MARKER in text for _, text in before.values()), "A's objects are not visible to A"
    unknown = []
    leaks = []
    for e in rest_endpoints(site):
        url = _fill(e, alpha)
        if url is None:
            unknown.append(str(e))
            continue
        r = _request(site.client, e, url, alpha, headers=site.b.headers)
        assert r.status_code < 500, f"{e} as B: {r.status_code} {r.text}"
        if _targets_an_object(e, alpha):
            assert r.status_code in HIDDEN, f"{e} gave B A's object: {r.status_code} {r.text}"
        if MARKER in r.text.lower():
            leaks.append(f"{e}: {r.text[:300]}")
    assert unknown == [], f"add A's object for these routes' parameters: {unknown}"
    assert leaks == [], "B saw A's data:\n" + "\n".join(leaks)
    after = _a_view(site, alpha)
    changed = [url for url in before if before[url] != after.get(url)]
    assert changed == [], f"B's requests changed what A sees at {changed}"


def test_the_same_names_in_two_workspaces_are_two_objects(site: Site, alpha: Objects) -> None:
    # Ids are the workspace's own: B creating "the same" journey or template neither fails on
    # A's (which would tell B that A has one) nor touches A's.
    c, hb = site.client, site.b.headers
    mine = _ok(c.post("/api/v1/journeys", json=journey_doc("B's cart"), headers=hb), 201)
    assert mine["name"] == "B's cart"
    _ok(c.post("/api/v1/templates", json=template_doc("B's thanks"), headers=hb), 201)
    a_journey = _ok(c.get(f"/api/v1/journeys/{JOURNEY_ID}", headers=site.a.headers))
    assert a_journey["name"] == f"Cart ({MARKER})"
    a_template = c.get(f"/api/v1/templates/{TEMPLATE}", headers=site.a.headers)
    assert "B's thanks" not in a_template.text and MARKER in a_template.text
    assert c.delete(f"/api/v1/journeys/{JOURNEY_ID}", headers=hb).status_code == 204
    assert (
        _ok(c.get(f"/api/v1/journeys/{JOURNEY_ID}", headers=site.a.headers))["status"]
        == (a_journey["status"])
    )


@pytest.fixture
def b_browser(site: Site) -> Iterator[TestClient]:
    client = site.browser(site.b)
    yield client
    client.close()


def test_another_workspaces_session_reaches_no_page_of_a(
    site: Site, alpha: Objects, b_browser: TestClient
) -> None:
    before = _a_view(site, alpha)
    token = site.csrf(b_browser)
    unknown = []
    for e in dashboard_endpoints(site):
        url = _fill(e, alpha)
        if url is None:
            unknown.append(str(e))
            continue
        if e.method == "GET":
            r = b_browser.get(url)
        else:
            r = b_browser.request(e.method, url, data={"csrf_token": token})
        assert r.status_code < 500, f"{e} as B: {r.status_code} {r.text[:500]}"
        if _targets_an_object(e, alpha):
            assert r.status_code in HIDDEN, f"{e} showed B A's object: {r.status_code}"
        assert MARKER not in r.text.lower(), f"{e} showed B A's data"
        assert MARKER not in r.headers.get("location", "")
    assert unknown == [], f"add A's object for these pages' parameters: {unknown}"
    after = _a_view(site, alpha)
    assert [url for url in before if before[url] != after.get(url)] == []


def test_pages_send_visitors_without_a_session_to_log_in(site: Site, alpha: Objects) -> None:
    anonymous = TestClient(site.app, follow_redirects=False)
    for e in dashboard_endpoints(site):
        url = _fill(e, alpha) or _PARAM.sub("x", e.path)
        r = anonymous.request(e.method, url)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), str(e)
