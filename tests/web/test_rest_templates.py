"""``/api/v1/templates``: a workspace's own templates, validated on save; built-ins read-only."""

from __future__ import annotations

from typing import Any

from dashboard_fixtures import Site


def doc(
    name: str = "thanks", html: str = "<p>Thanks {{ first_name('there') }}!</p>"
) -> dict[str, Any]:
    return {
        "name": name,
        "title": "Thank you",
        "trigger": "order",
        "params": {"headline": "Thanks"},
        "email": {"subject": "{{ params.headline }}, {{ first_name('friend') }}", "html": html},
        "sms": {"body": "{{ store.name }}: thanks for your order"},
    }


def test_create_read_update_preview_delete(site: Site) -> None:
    c, h = site.client, site.a.headers
    r = c.post("/api/v1/templates", json=doc(), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["builtin"] is False and r.json()["channels"] == ["email", "sms"]
    path = site.settings.home / "templates" / site.a.workspace_id / "thanks.yaml"
    assert "Thanks {{ first_name('there') }}" in path.read_text()
    assert c.post("/api/v1/templates", json=doc(), headers=h).status_code == 409
    got = c.get("/api/v1/templates/thanks", headers=h).json()
    assert got["params"] == {"headline": "Thanks"} and "title: Thank you" in got["yaml"]
    changed = doc(html="<p>Merci {{ first_name('ami') }}</p>")
    assert c.put("/api/v1/templates/thanks", json=changed, headers=h).status_code == 200
    preview = c.post(
        "/api/v1/templates/thanks/preview",
        json={"channel": "email", "customer": {"first_name": "Zoë"}, "params": {"headline": "Yay"}},
        headers=h,
    ).json()
    assert preview["subject"] == "Yay, Zoë" and "Merci Zoë" in preview["html"]
    assert "Merci Zoë" in preview["text"]
    sms = c.post("/api/v1/templates/thanks/preview", json={"channel": "sms"}, headers=h).json()
    assert sms["text"].endswith("thanks for your order")
    r = c.post("/api/v1/templates/thanks/preview", json={"channel": "whatsapp"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "channel"
    r = c.post("/api/v1/templates/thanks/preview", json={"params": {"nope": 1}}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "params"
    assert c.delete("/api/v1/templates/thanks", headers=h).status_code == 204
    assert not path.exists()
    assert c.get("/api/v1/templates/thanks", headers=h).status_code == 404


def test_builtins_are_listed_read_only_and_can_be_overridden(site: Site) -> None:
    c, h = site.client, site.a.headers
    listed = c.get("/api/v1/templates?limit=500", headers=h).json()
    cart = next(t for t in listed["items"] if t["name"] == "abandoned_cart")
    assert cart["builtin"] is True
    assert (
        c.put("/api/v1/templates/abandoned_cart", json=doc("abandoned_cart"), headers=h).status_code
        == 409
    )
    assert c.delete("/api/v1/templates/abandoned_cart", headers=h).status_code == 409
    own = doc("abandoned_cart") | {"trigger": "cart"}
    assert c.post("/api/v1/templates", json=own, headers=h).status_code == 201
    mine = c.get("/api/v1/templates/abandoned_cart", headers=h).json()
    assert mine["builtin"] is False and mine["overrides_builtin"] is True
    # Workspace b still sees the pre-built one.
    theirs = c.get("/api/v1/templates/abandoned_cart", headers=site.b.headers).json()
    assert theirs["builtin"] is True


def test_injection_and_unknown_variables_are_refused_naming_the_field(site: Site) -> None:
    c, h = site.client, site.a.headers
    attacks = [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{% for x in range(10**9) %}{% endfor %}",
        "{{ customer.secret_thing }}{{ lipsum }}",
        "{{ undefined_variable }}",
    ]
    for html in attacks:
        r = c.post("/api/v1/templates", json=doc(html=html), headers=h)
        assert r.status_code == 400, (html, r.text)
        assert r.json()["field"] == "email.html", (html, r.json())
    bad = c.post(
        "/api/v1/templates", json=doc() | {"email": {"subject": "{{ oops", "html": "x"}}, headers=h
    )
    assert bad.status_code == 400 and bad.json()["field"] == "email.subject"
    nameless = c.post("/api/v1/templates", json={"title": "x"}, headers=h)
    assert nameless.status_code == 400 and nameless.json()["field"] == "name"
    traversal = c.post("/api/v1/templates", json=doc("../../etc"), headers=h)
    assert traversal.status_code == 400 and traversal.json()["field"] == "name"
    assert c.put("/api/v1/templates/..%2Fx", json=doc(), headers=h).status_code in (404, 422)
    unknown = c.post("/api/v1/templates", json=doc() | {"colour": "red"}, headers=h)
    assert unknown.status_code == 400 and unknown.json()["field"] == "colour"
    assert not (site.settings.home / "templates" / site.a.workspace_id).exists() or not list(
        (site.settings.home / "templates" / site.a.workspace_id).glob("*.yaml")
    )


def test_another_workspace_cannot_touch_a_template(site: Site) -> None:
    c = site.client
    assert c.post("/api/v1/templates", json=doc(), headers=site.a.headers).status_code == 201
    hb = site.b.headers
    assert c.get("/api/v1/templates/thanks", headers=hb).status_code == 404
    assert c.put("/api/v1/templates/thanks", json=doc(), headers=hb).status_code == 404
    assert c.delete("/api/v1/templates/thanks", headers=hb).status_code == 404
    assert c.post("/api/v1/templates/thanks/preview", json={}, headers=hb).status_code == 404
    names = [t["name"] for t in c.get("/api/v1/templates?limit=500", headers=hb).json()["items"]]
    assert "thanks" not in names
    assert c.get("/api/v1/templates/thanks", headers=site.a.headers).status_code == 200
