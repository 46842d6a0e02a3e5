"""The dashboard in a real browser: signing in, what each page shows, and its actions,
checked against what the same gRPC calls answer."""

from __future__ import annotations

import datetime as dt
import itertools
import os

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from mailpool.v1 import conversation_service_pb2, event_pb2
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import Tier
from tests.ui.conftest import Site, sign_in
from tests.ui.support import Api, IdentitySeed, utc_today

pytestmark = pytest.mark.usefixtures("browser")


_numbers = itertools.count(1)


def _handle(name: str) -> str:
    """A handle no other test (or test process on this database) uses."""
    return f"{name}.{os.getpid()}.{next(_numbers)}@mailpool.local"


def test_a_bad_key_is_refused_and_a_good_one_signs_in(
    page: Page, context: BrowserContext, site: Site
) -> None:
    tenant = site.tenant()
    page.goto("/ui/")
    expect(page).to_have_url(f"{site.base_url}/ui/signin?next=%2Fui%2F")
    page.get_by_label("API key").fill("sk_live_" + "0" * 40)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That key was not accepted: invalid api key.")
    assert [c["name"] for c in context.cookies() if c["name"] == "mailpool_ui"] == []

    sign_in(page, tenant.key)
    expect(page.locator(f'tr[data-handle="{tenant.handle}"]')).to_be_visible()
    [cookie] = [c for c in context.cookies() if c["name"] == "mailpool_ui"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/ui")
    # The session id is all the browser holds: not the key, and nothing scripts can read.
    assert tenant.key not in cookie["value"] and tenant.key not in page.content()
    assert page.evaluate("document.cookie") == ""

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    page.goto("/ui/")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()


def test_identities_show_usage_state_tier_mailboxes_and_the_weakest_mailbox(
    page: Page, site: Site, api: Api
) -> None:
    weak = f"weak.{os.getpid()}@tryacme.example"
    tenant = site.tenant(
        IdentitySeed(_handle("alice"), usage={0: 5}, mailboxes=[(weak, 15)]),
        IdentitySeed(_handle("bob"), tier=Tier.GROWTH, state=IdentityState.SUSPENDED),
    )
    api.send(tenant, "morgan@northwind.example")
    api.send(tenant, "river@northwind.example")
    sign_in(page, tenant.key)

    for handle in tenant.handles:
        identity = api.identity(tenant, handle).identity
        row = page.locator(f'tr[data-handle="{handle}"]')
        expect(row.locator(".used")).to_have_text(str(identity.used_today))
        expect(row.locator(".cap")).to_have_text(str(identity.daily_cap))
        expect(row.locator(".mailboxes")).to_have_text(str(len(identity.mailboxes)))
        weakest = min(identity.mailboxes, key=lambda m: m.health)
        expect(row.locator(".weakest .health")).to_have_text(str(weakest.health))
        expect(row.locator(".weakest .address")).to_have_text(weakest.email)
    alice = page.locator(f'tr[data-handle="{tenant.handles[0]}"]')
    expect(alice.locator(".used")).to_have_text("7")  # 5 recorded earlier today + 2 sends
    expect(alice.locator(".weakest .address")).to_have_text(weak)
    expect(alice.get_by_text("active", exact=True)).to_be_visible()
    expect(alice.get_by_text("starter", exact=True)).to_be_visible()
    bob = page.locator(f'tr[data-handle="{tenant.handles[1]}"]')
    expect(bob.get_by_text("suspended", exact=True)).to_be_visible()
    expect(bob.get_by_text("growth", exact=True)).to_be_visible()


def test_the_usage_graph_draws_each_days_sends_and_the_cap(page: Page, site: Site) -> None:
    usage = {10: 7, 3: 150, 1: 40, 0: 12}
    tenant = site.tenant(IdentitySeed(_handle("graph"), usage=usage))
    sign_in(page, tenant.key)
    page.get_by_role("link", name=tenant.handle).click()
    expect(page.get_by_role("heading", level=1, name=tenant.handle)).to_be_visible()

    today = utc_today()
    expected = {(today - dt.timedelta(days=n)).isoformat(): usage.get(n, 0) for n in range(30)}
    # The numbers, as a table (for screen readers and for this test), one click away.
    page.get_by_text("The same numbers as a table").click()
    rows = page.locator("#usage-table tbody tr")
    expect(rows).to_have_count(30)
    table = {
        row.get_attribute("data-day"): (
            int(row.locator(".sent").inner_text()),
            int(row.locator(".cap").inner_text()),
        )
        for row in rows.all()
    }
    assert table == {day: (count, 150) for day, count in expected.items()}

    # The picture: every bar as tall as its number on the axis, the cap a line at 150.
    drawn = page.evaluate(
        """() => {
            const svg = document.querySelector("svg.usage-graph");
            const baseline = Number(svg.querySelector(".baseline").getAttribute("y1"));
            const top = Number(svg.dataset.top);
            const ticks = [...svg.querySelectorAll(".tick")].map(t =>
                [Number(t.textContent), Number(t.getAttribute("y"))]);
            const bars = [...svg.querySelectorAll("rect.bar")].map(r => ({
                day: r.dataset.day, height: Number(r.getAttribute("height")),
                y: Number(r.getAttribute("y")), title: r.querySelector("title").textContent}));
            const cap = svg.querySelector(".cap-line").getAttribute("points")
                .trim().split(/\\s+/).map(p => Number(p.split(",")[1]));
            return {baseline, top, ticks, bars, cap,
                    label: svg.getAttribute("aria-labelledby")};
        }"""
    )
    [(top_value, top_y)] = [(v, y) for v, y in drawn["ticks"] if v == drawn["top"]]
    per_send = (drawn["baseline"] - top_y) / top_value
    assert [b["day"] for b in drawn["bars"]] == sorted(expected)  # oldest first
    assert {b["day"]: round(b["height"] / per_send) for b in drawn["bars"]} == expected
    for bar in drawn["bars"]:
        assert bar["y"] + bar["height"] == pytest.approx(drawn["baseline"], abs=0.02)
        assert bar["title"] == f"{bar['day']}: {expected[bar['day']]} sent, cap 150"
    assert {round((drawn["baseline"] - y) / per_send) for y in drawn["cap"]} == {150}
    assert drawn["label"] == "usage-title usage-desc"


def test_a_conversation_is_labelled_and_archived_and_its_timeline_says_so(
    page: Page, site: Site, api: Api
) -> None:
    tenant = site.tenant()
    sent = api.send(tenant, "morgan@northwind.example", subject="Pricing for Q3")
    sign_in(page, tenant.key)
    page.get_by_role("link", name=tenant.handle).click()
    page.get_by_role("link", name="Pricing for Q3").click()
    expect(page.get_by_role("heading", level=1, name="Pricing for Q3")).to_be_visible()
    timeline = page.locator("#timeline > li")
    expect(timeline).to_have_count(1)
    expect(
        timeline.first.get_by_role("heading", name="Sent to morgan@northwind.example")
    ).to_be_visible()

    page.get_by_label("New label").fill("vip/q3, hot")
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_role("status")).to_have_text("Label 'vip/q3, hot' added.")
    expect(page.locator("#labels .tag")).to_have_text(["vip/q3, hot"])
    page.get_by_label("New label").fill("renewal")
    page.get_by_role("button", name="Add label").click()
    expect(page.locator("#labels .tag")).to_have_text(["vip/q3, hot", "renewal"])

    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("status")).to_have_text("Archived.")
    expect(page.locator("#archived-state")).to_have_text("archived")
    page.get_by_role("button", name="Remove label renewal").click()
    expect(page.locator("#labels .tag")).to_have_text(["vip/q3, hot"])

    kinds = ["message", "label_added", "label_added", "archived", "label_removed"]
    expect(timeline).to_have_count(len(kinds))
    assert [item.get_attribute("data-kind") for item in timeline.all()] == kinds
    expect(timeline.nth(3)).to_contain_text("Archived")
    expect(timeline.nth(4)).to_contain_text("renewal")

    stored = api.conversation(tenant, sent.conv_id)
    assert (stored.conversation.archived, list(stored.conversation.labels)) == (
        True,
        ["vip/q3, hot"],
    )
    # And the archived filter of the identity page finds it there.
    page.get_by_role("link", name=tenant.handle).click()
    page.get_by_role("link", name="Archived", exact=True).click()
    expect(page.locator(f'tr[data-conv="{sent.conv_id}"]')).to_be_visible()
    page.get_by_role("link", name="Not archived").click()
    expect(page.locator("#no-conversations")).to_be_visible()


def test_a_refused_label_is_explained_on_the_page(page: Page, site: Site, api: Api) -> None:
    tenant = site.tenant()
    sent = api.send(tenant, "morgan@northwind.example")
    sign_in(page, tenant.key)
    page.goto(f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}")
    # 65 characters: the browser's maxlength is lifted to see the server's own answer.
    page.get_by_label("New label").evaluate("input => input.removeAttribute('maxlength')")
    page.get_by_label("New label").fill("x" * 65)
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_role("alert")).to_contain_text("label")
    assert list(api.conversation(tenant, sent.conv_id).conversation.labels) == []


def test_a_queued_send_is_cancelled(page: Page, site: Site, api: Api) -> None:
    tenant = site.tenant()
    sent = api.send(tenant, "morgan@northwind.example", subject="Renewal")
    sign_in(page, tenant.key)
    page.goto(f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}")
    queued = page.locator("#queued-sends li")
    expect(queued).to_have_count(1)
    expect(queued).to_have_attribute("data-pending", sent.pending_id)

    page.get_by_role("button", name="Cancel the send to morgan@northwind.example").click()
    expect(page.get_by_role("status")).to_have_text(
        "Cancelled the send to morgan@northwind.example."
    )
    expect(page.locator("#no-queued")).to_be_visible()
    cancelled = api.events_of(tenant, ["email.cancelled"])
    assert [(e.email_cancelled.pending_id, e.email_cancelled.reason) for e in cancelled] == [
        (sent.pending_id, event_pb2.CANCEL_REASON_ADMIN)
    ]


def test_the_live_tail_shows_a_new_send(page: Page, site: Site, api: Api) -> None:
    tenant = site.tenant()
    api.send(tenant, "first@northwind.example")
    sign_in(page, tenant.key)
    page.goto(f"/ui/identities/{tenant.handle}/events")
    expect(page.locator("#tail-status")).to_contain_text("Live")
    entries = page.locator("#tail li")
    expect(entries).to_have_count(1)

    api.send(tenant, "second@northwind.example")
    expect(entries).to_have_count(2)
    expect(entries.nth(1)).to_have_attribute("data-type", "email.queued")
    expect(entries.nth(1)).to_contain_text("to second@northwind.example")
    assert [e.get_attribute("data-seq") for e in entries.all()] == ["1", "2"]


def test_another_orgs_key_sees_none_of_its_data(
    page: Page, context: BrowserContext, site: Site, api: Api
) -> None:
    first = site.tenant()
    second = site.tenant()
    theirs = api.send(first, "morgan@northwind.example", subject="Confidential")
    sign_in(page, second.key)
    expect(page.locator("#identities tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-handle="{first.handle}"]')).to_have_count(0)
    page.get_by_role("link", name=second.handle).click()
    expect(page.locator("#no-conversations")).to_be_visible()

    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for url in (
        f"/ui/identities/{first.handle}",
        f"/ui/identities/{first.handle}/conversations/{theirs.conv_id}",
        f"/ui/identities/{second.handle}/conversations/{theirs.conv_id}",
        f"/ui/identities/{first.handle}/events",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 404, url
        expect(page.get_by_role("heading", level=1, name="Not found")).to_be_visible()
        expect(page.get_by_text("Confidential")).to_have_count(0)
    stream = page.request.get(f"/ui/identities/{first.handle}/events/stream")
    assert stream.status == 404
    for action in ("archive", "labels"):
        refused = page.request.post(
            f"/ui/identities/{first.handle}/conversations/{theirs.conv_id}/{action}",
            form={"csrf": csrf or "", "label": "mine"},
            max_redirects=0,
        )
        assert refused.status == 404
    cancel = page.request.post(
        f"/ui/identities/{first.handle}/sends/{theirs.pending_id}/cancel",
        form={"csrf": csrf or ""},
        max_redirects=0,
    )
    assert cancel.status == 404
    untouched = api.conversation(first, theirs.conv_id).conversation
    assert (untouched.archived, list(untouched.labels)) == (False, [])
    assert api.events_of(first, ["email.cancelled"]) == []


def test_an_action_by_keyboard_alone(page: Page, site: Site, api: Api) -> None:
    tenant = site.tenant()
    sent = api.send(tenant, "morgan@northwind.example")
    sign_in(page, tenant.key)
    page.goto(f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "archive-button":
            break
    else:
        pytest.fail("Tab never reached the Archive button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Archived.")
    assert api.conversation(tenant, sent.conv_id).conversation.archived


def test_every_page_has_labelled_inputs_and_headings_in_order(
    page: Page, site: Site, api: Api
) -> None:
    tenant = site.tenant()
    sent = api.send(tenant, "morgan@northwind.example")
    page.goto("/ui/signin")
    _check_accessibility(page)
    sign_in(page, tenant.key)
    for url in (
        "/ui/",
        f"/ui/identities/{tenant.handle}",
        f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}",
        f"/ui/identities/{tenant.handle}/events",
    ):
        page.goto(url)
        _check_accessibility(page)


def _check_accessibility(page: Page) -> None:
    found = page.evaluate(
        """() => {
            const unlabelled = [...document.querySelectorAll("input, select, textarea")]
                .filter(i => i.type !== "hidden")
                .filter(i => !(i.labels && i.labels.length) && !i.getAttribute("aria-label"))
                .map(i => i.name);
            const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")]
                .map(h => Number(h.tagName[1]));
            const unnamedButtons = [...document.querySelectorAll("button")]
                .filter(b => !(b.getAttribute("aria-label") || b.textContent.trim())).length;
            return {unlabelled, levels, unnamedButtons, lang: document.documentElement.lang};
        }"""
    )
    assert found["unlabelled"] == [], page.url
    assert found["unnamedButtons"] == 0, page.url
    assert found["lang"] == "en"
    levels = found["levels"]
    assert levels[0] == 1 and levels.count(1) == 1, page.url
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), (page.url, levels)


@pytest.mark.parametrize("width", [375, 768, 1000])
def test_pages_never_scroll_sideways(browser: object, site: Site, api: Api, width: int) -> None:
    from tests.ui.conftest import new_context

    tenant = site.tenant(
        IdentitySeed(
            _handle("a-rather-long-identity-handle-for-a-small-screen"),
            usage={1: 30},
            mailboxes=[(f"someone.with.a.long.address.{next(_numbers)}@a-long-domain.example", 15)],
        ),
        IdentitySeed(_handle("another-identity-with-a-long-handle"), tier=Tier.SCALE),
    )
    sent = api.send(tenant, "correspondent.with.a.long.name@northwind.example")
    screen = new_context(browser, site.base_url, viewport={"width": width, "height": 740})  # type: ignore[arg-type]
    try:
        page = screen.new_page()
        sign_in(page, tenant.key)
        for url in (
            "/ui/",
            f"/ui/identities/{tenant.handle}",
            f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}",
            f"/ui/identities/{tenant.handle}/events",
        ):
            page.goto(url)
            widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert widths[0] <= widths[1], (url, widths)
    finally:
        screen.close()


def test_conversation_pages_are_one_page_of_the_list(page: Page, site: Site, api: Api) -> None:
    tenant = site.tenant()
    for n in range(27):
        api.send(tenant, f"lead{n:02d}@northwind.example", subject=f"Lead {n:02d}")
    sign_in(page, tenant.key)
    page.goto(f"/ui/identities/{tenant.handle}")
    rows = page.locator("#conversations tbody tr")
    expect(rows).to_have_count(25)
    first_page = {r.get_attribute("data-conv") for r in rows.all()}
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(2)
    second_page = {r.get_attribute("data-conv") for r in rows.all()}
    listed = api.conversations.ListConversations(
        conversation_service_pb2.ListConversationsRequest(identity=tenant.handle, page_size=200),
        metadata=tenant.metadata,
    )
    assert first_page | second_page == {c.id for c in listed.conversations}
    assert not first_page & second_page
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
