"""Templates: the pre-built library, rendering per channel, validation, and the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wayline.channels.templates import Template, TemplateLibrary, html_to_text
from wayline.channels.templates.context import SAMPLE_CUSTOMER, SAMPLE_EVENTS, SAMPLE_STORE
from wayline.errors import InputError

LIBRARY = TemplateLibrary()
EXPECTED = {
    "welcome",
    "abandoned_cart",
    "browse_abandonment",
    "discount_offer",
    "better_deal",
    "review_request",
    "back_in_stock",
    "win_back",
    "order_follow_up",
    "survey_invitation",
}


def make(email_html: str = "<p>Hi</p>", trigger: str = "none", **extra: object) -> Template:
    data: dict[str, object] = {
        "name": "t",
        "title": "T",
        "trigger": trigger,
        "email": {"subject": "Hello", "html": email_html},
        **extra,
    }
    return Template.from_data(data, source="t.yaml")


def test_library_has_every_prebuilt_template_and_each_validates() -> None:
    assert set(LIBRARY.names()) >= EXPECTED
    for template in LIBRARY.all():
        assert set(template.channels) == {"email", "sms", "whatsapp"}
        template.validate()


def test_abandoned_cart_lists_the_items_with_prices_and_links() -> None:
    t = LIBRARY.get("abandoned_cart")
    email = t.render_email(t.sample_context("email"))
    assert email.subject == "Ana, your cart is waiting"
    assert "Linen shirt" in email.html and "Stoneware mug" in email.html
    assert "€49.00" in email.html and "€78.00" in email.html
    assert "utm_medium=email" in email.html
    # CSS is inlined onto the elements (clients drop <style>), media queries are kept.
    assert re.search(r'<a class="button" [^>]*style="display: inline-block;', email.html)
    assert "@media only screen" in email.html
    # The plain-text part is derived: words, written-out links, no markup, no hidden preheader.
    assert "Return to your cart (https://casaverde.example/cart?" in email.text
    assert "<" not in email.text and "saved for you" not in email.text


def test_sms_and_whatsapp_render() -> None:
    t = LIBRARY.get("back_in_stock")
    sms = t.render_sms(t.sample_context("sms"))
    assert sms.startswith("Casa Verde: the Linen shirt is back in stock!")
    assert "utm_medium=sms" in sms and sms.endswith("Reply STOP to opt out.")
    wa = t.render_whatsapp(t.sample_context("whatsapp"))
    assert (wa.name, wa.language) == ("back_in_stock", "en_US")
    assert wa.parameters[:2] == ("Ana", "Linen shirt")


def test_first_name_falls_back_and_discount_codes_are_stable_per_customer() -> None:
    t = LIBRARY.get("welcome")

    def ctx(customer: dict[str, object]) -> dict[str, object]:
        return t.context_for(
            customer=customer,
            store=SAMPLE_STORE,
            channel="email",
            code_secret="s",
            journey={"id": "j1"},
        )

    nameless = t.render_email(ctx({"id": "c1", "email": "x@example.com"}))
    assert nameless.subject == "Welcome to Casa Verde, friend"
    a1 = t.render_sms(ctx({"id": "c1", "first_name": "  maria "}))
    a2 = t.render_sms(ctx({"id": "c1", "first_name": "Maria"}))
    b = t.render_sms(ctx({"id": "c2", "first_name": "Maria"}))
    assert "welcome, Maria!" in a1
    code = next(w for w in a1.split() if w.startswith("WELCOME-"))
    assert code in a2 and code not in b


def test_params_have_defaults_and_overrides_must_be_declared() -> None:
    t = LIBRARY.get("discount_offer")
    base = {
        "customer": SAMPLE_CUSTOMER,
        "store": SAMPLE_STORE,
        "channel": "sms",
        "code_secret": "s",
    }
    assert "15% off" in t.render_sms(t.context_for(**base))  # type: ignore[arg-type]
    assert "30% off" in t.render_sms(t.context_for(**base, params={"discount_percent": 30}))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown parameter"):
        t.context_for(**base, params={"discount_pct": 30})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("<p>{{ customer.frist_name }}</p>", "'customer' has no field 'frist_name'"),
        ("<p>{{ coupon }}</p>", "unknown variable 'coupon'"),
        ("<p>{{ product.name }}</p>", "unknown variable 'product'"),
        ("{% for i in cart.items %}{{ i.colour }}{% endfor %}", "has no field 'colour'"),
        ("{% if false %}{{ store.phone }}{% endif %}", "'store' has no field 'phone'"),
        ("<p>{{ params.percent }}</p>", "'params' has no field 'percent'"),
        ("<p>{{ customer.email.domain }}</p>", "is a value"),
    ],
)
def test_a_missing_variable_is_an_error_at_validation_time_with_its_line(
    source: str, message: str
) -> None:
    trigger = "cart" if "cart" in source else "none"
    with pytest.raises(InputError, match=message) as info:
        make("<h1>Hello</h1>\n" + source, trigger=trigger)
    assert info.value.row == 2 and info.value.field == "email.html"


def test_declared_but_absent_values_print_as_nothing_and_free_form_properties_pass() -> None:
    t = make("<p>[{{ customer.last_name }}] {{ customer.properties.tier }}</p>")
    ctx = t.context_for(
        customer={"id": "c", "properties": {"tier": "gold"}},
        store=SAMPLE_STORE,
        channel="email",
        code_secret="s",
    )
    assert "[] gold" in t.render_email(ctx).html


def test_ordinary_jinja_still_works_in_the_sandbox() -> None:
    t = make(
        "{% macro row(it) %}<li>{{ it.name|upper }}</li>{% endmacro %}"
        "{% set ns = namespace(n=0) %}"
        "{% for it in cart.items %}{% set ns.n = ns.n + it.quantity %}"
        "{{ loop.index }}{{ row(it) }}{% endfor %}"
        "<p>{{ ns.n }}|{{ cart.items|map(attribute='name')|join(', ') }}"
        "|{{ cart.items|sum(attribute='quantity') }}|{{ cart['items'][1].name }}</p>",
        trigger="cart",
    )
    text = t.render_email(t.sample_context("email")).text
    assert "- LINEN SHIRT" in text
    assert "3|Linen shirt, Stoneware mug|3|Stoneware mug" in text


def test_a_syntax_error_is_reported_with_its_line() -> None:
    with pytest.raises(InputError, match=r"t\.yaml, row 3") as info:
        make("<p>\n</p>\n{% if %}")
    assert info.value.field == "email.html"


def test_unknown_fields_in_a_template_file_are_refused() -> None:
    with pytest.raises(InputError, match="subjcet"):
        Template.from_data(
            {"name": "t", "title": "T", "email": {"subjcet": "x", "html": "y"}}, source="t.yaml"
        )


INJECTIONS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__ }}",
    "{{ customer['__class__'] }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ customer.email.upper() }}",
    "{{ first_name.__globals__ }}",
    "{{ (customer|attr('__class__')) }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{{ config }}",
    "{{ request }}",
    "{{ 'x' * 1000000000 }}",
    "{{ 9 ** 999999999 }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ '%1000000000s'|format('x') }}",
    "{% for i in range(10000000) %}x{% endfor %}",
]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_template_injection_attempts_are_rejected(attack: str) -> None:
    with pytest.raises(InputError):
        t = make(f"<p>{attack}</p>")
        t.render_email(t.sample_context("email"))


def test_attribute_access_outside_the_context_is_refused_at_render_time_too() -> None:
    # Past the static check (a free-form value), the sandbox still refuses Python attributes.
    t = make("<p>{{ customer.properties.note.__class__ }}|{{ customer.properties.note.upper }}</p>")
    ctx = t.context_for(
        customer={"id": "c", "properties": {"note": "x"}},
        store=SAMPLE_STORE,
        channel="email",
        code_secret="s",
    )
    with pytest.raises(InputError):
        t.render_email(ctx)


def test_customer_data_is_data_never_template_code_and_is_escaped() -> None:
    t = LIBRARY.get("welcome")
    ctx = t.context_for(
        customer={"id": "c", "first_name": "{{ 7*7 }}<script>alert(1)</script>"},
        store=SAMPLE_STORE,
        channel="email",
        code_secret="s",
    )
    email = t.render_email(ctx)
    assert "49" not in email.subject and "{{ 7*7 }}" in email.subject
    html = email.html.lower()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_workspace_templates_override_and_copy(tmp_path: Path) -> None:
    lib = TemplateLibrary(tmp_path / "templates")
    path = lib.copy("win_back")
    path.write_text(path.read_text().replace("We miss you", "Come back"), encoding="utf-8")
    t = lib.get("win_back")
    assert not t.builtin
    assert t.render_email(t.sample_context("email")).subject.startswith("Come back")
    with pytest.raises(InputError, match="already exists"):
        lib.copy("win_back")


def test_html_to_text_keeps_reading_order_and_links() -> None:
    text = html_to_text(
        "<html><head><title>x</title></head><body><h1>Hi</h1><p>A <b>b</b><br>c</p>"
        '<ul><li>one</li><li>two</li></ul><a href="https://e.example/?a=1&amp;b=2">Go</a>'
        '<img src="https://p.example/o.gif" alt=""></body></html>'
    )
    assert text == "Hi\n\nA b\nc\n\n- one\n- two\nGo (https://e.example/?a=1&b=2)\n"


def test_sample_events_cover_every_trigger() -> None:
    assert set(SAMPLE_EVENTS) == {"none", "product", "cart", "order"}
