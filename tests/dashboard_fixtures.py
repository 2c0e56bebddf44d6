"""Fixtures for the REST API and dashboard tests: an app on a fresh data folder, two
workspaces each with a secret API key, a logged-in browser-like client, and a small simulated
store to load into it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from wayline.api import create_app
from wayline.config import Settings
from wayline.events.simulator import SimulatedStore, StoreConfig, load_store, simulate_store
from wayline.storage.accounts import Accounts
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore

PASSWORD = "correct horse battery"
#: The sample store's first day (60 days of 600 customers, in the first workspace).
SAMPLE_START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Tenant:
    """One workspace as its callers see it."""

    workspace_id: str
    write_key: str
    api_key: str
    email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Site:
    settings: Settings
    db: Database
    app: FastAPI
    client: TestClient
    tenants: list[Tenant] = field(default_factory=list)

    @property
    def a(self) -> Tenant:
        return self.tenants[0]

    @property
    def b(self) -> Tenant:
        return self.tenants[1]

    def add_tenant(self, name: str) -> Tenant:
        if not self.tenants:
            workspace_id, write_key, _ = self.db.ensure_default_workspace()
        else:
            workspace_id, write_key = self.db.create_workspace(name)
        accounts = Accounts(self.db)
        _, key = accounts.create_api_key(workspace_id, f"{name} tests")
        email = f"owner@{name}.example"
        accounts.create_user(workspace_id, email, PASSWORD)
        tenant = Tenant(workspace_id, write_key, key, email)
        self.tenants.append(tenant)
        return tenant

    def browser(self, tenant: Tenant | None = None) -> TestClient:
        """A new client logged into the dashboard as ``tenant`` (default: the first)."""
        tenant = tenant or self.a
        client = TestClient(self.app, follow_redirects=False)
        r = client.post("/login", data={"email": tenant.email, "password": PASSWORD})
        assert r.status_code == 303, r.text
        return client

    def load(self, sample: SimulatedStore) -> None:
        """Put the sample store's events into this site's analytics store."""
        with EventStore(self.settings.resolved_analytics_path) as store:
            load_store(store, sample)

    def csrf(self, client: TestClient, page: str | None = None) -> str:
        """The CSRF token of this client's session — read from ``page`` when given (every
        dashboard page carries it in ``<meta name="csrf-token">``), else from the store."""
        if page is None:
            session = Accounts(self.db).session(client.cookies["wayline_session"])
            assert session is not None
            return session.csrf_token
        html = client.get(page).text
        marker = '<meta name="csrf-token" content="'
        assert marker in html, f"no CSRF token on {page}"
        return html.split(marker, 1)[1].split('"', 1)[0]


@pytest.fixture
def site(home: Path) -> Iterator[Site]:
    """The app on a fresh data folder with two workspaces ('alpha', the default, and 'beta')."""
    settings = Settings(home=home)
    settings.ensure_home()
    db = Database.open(settings)
    app = create_app(settings, database=db)
    with TestClient(app, follow_redirects=False) as client:
        s = Site(settings, db, app, client)
        s.add_tenant("alpha")
        s.add_tenant("beta")
        yield s
    db.close()


@pytest.fixture(scope="session")
def sample() -> SimulatedStore:
    """A small simulated store (every page and analytic has something to show)."""
    return simulate_store(StoreConfig(seed=5, customers=600, start=SAMPLE_START, days=60))
