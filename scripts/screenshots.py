"""The README's dashboard screenshots (docs/screenshots/*.png), taken with Debian's
chromium through Playwright. Run by hand after changing how the pages look:

    .venv/bin/python scripts/screenshots.py

Seeds a throwaway database with a small demo org through mailpool's own use cases (two
weeks of sends on a moved clock, a reply, labels, an archived thread, a dead mailbox),
serves it with `mailpool serve`, signs in and photographs each page."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from pathlib import Path

import grpc
from local_serve import serve
from playwright.sync_api import Page, sync_playwright

from mailpool.v1 import (
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    send_service_pb2,
    send_service_pb2_grpc,
)
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import UTC, FakeClock
from mailpool_server.service.inbound import InboundMail
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import Tier

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
HANDLE = "alice.acme@mailpool.local"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# Sends per day over the last two weeks, oldest first (today last).
DAILY = [12, 18, 25, 9, 0, 31, 44, 52, 38, 61, 75, 40, 58, 23]
PEOPLE = ["morgan", "river", "sasha", "quinn", "devon", "harper", "jules", "rowan"]


async def seed(folder: Path) -> tuple[str, str]:
    """The key and the id of the conversation to photograph."""
    today = dt.datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    clock = FakeClock(today - dt.timedelta(days=len(DAILY) - 1))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'mailpool.db'}",
        data_dir=folder,
        grpc_port=0,
        http_port=None,
        inbound_port=None,
        lmtp_port=None,
        run_dispatcher=False,
        run_webhook_relay=False,
    )
    app = await App.open(settings, clock)
    await app.start()
    try:
        admin = app.admin
        await admin.create_org("acme")
        key = await admin.create_key("acme")
        await admin.create_identity("acme", HANDLE, Tier.STARTER, warmup_stage=5)
        await admin.add_mailbox(HANDLE, "alice.chen@tryacme.com", warmup_stage=2, health=12)
        await admin.create_identity("acme", "bob.acme@mailpool.local", Tier.GROWTH, warmup_stage=3)
        await admin.create_identity(
            "acme", "carol.acme@mailpool.local", Tier.SCALE, IdentityState.SUSPENDED, 1
        )
        metadata = [("authorization", f"Bearer {key}")]
        assert app.grpc is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}") as channel:
            sends = send_service_pb2_grpc.SendServiceStub(channel)
            conversations = conversation_service_pb2_grpc.ConversationServiceStub(channel)
            featured = ""
            for day, count in enumerate(DAILY):
                for n in range(count):
                    person = PEOPLE[n % len(PEOPLE)]
                    answer = await sends.Send(
                        send_service_pb2.SendRequest(
                            identity=HANDLE,
                            to=[f"{person}.{day}.{n}@northwind.example"],
                            subject=f"Quick question about {['pricing', 'the pilot', 'Q3'][n % 3]}",
                            text=f"Hi {person.title()},\n\nTen minutes this week?\n\nAlice",
                        ),
                        metadata=metadata,
                    )
                    clock.advance(minutes=7)
                    if day == len(DAILY) - 3 and n == 0:
                        featured = answer.results[0].conv_id
                while await app.dispatcher.run_once():
                    pass
                if day == len(DAILY) - 2:
                    await _reply(app, conversations, metadata, featured)
                if day < len(DAILY) - 1:
                    clock.set(today - dt.timedelta(days=len(DAILY) - 2 - day))
            for labels in (["pilot", "warm"],):
                await conversations.AddLabels(
                    conversation_service_pb2.AddLabelsRequest(
                        identity=HANDLE, conv_id=featured, labels=labels
                    ),
                    metadata=metadata,
                )
            await sends.Send(
                send_service_pb2.SendRequest(
                    identity=HANDLE, conv_id=featured, text="Thursday at 10 works. Talk then!"
                ),
                metadata=metadata,
            )
        return key, featured
    finally:
        await app.stop()


async def _reply(
    app: App,
    conversations: conversation_service_pb2_grpc.ConversationServiceAsyncStub,
    metadata: list[tuple[str, str]],
    conv_id: str,
) -> None:
    found = await conversations.GetConversation(
        conversation_service_pb2.GetConversationRequest(identity=HANDLE, conv_id=conv_id),
        metadata=metadata,
    )
    first = found.timeline[0].message
    await app.inbound.receive(
        InboundMail(
            mailbox_email=first.from_address,
            from_address=found.conversation.correspondent,
            to=(first.from_address,),
            cc=(),
            subject="Re: " + first.subject,
            text="Hi Alice,\n\nSure. Thursday morning? We are looking at a pilot in May.\n\nMorgan",
            html="",
            message_id_header="<reply-1@northwind.example>",
            in_reply_to=first.message_id_header,
            references=(first.message_id_header,),
        )
    )


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    print(f"{path.relative_to(OUT.parent.parent)}: {path.stat().st_size // 1024} KB")


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="mailpool-screenshots-"))
    key, featured = asyncio.run(seed(folder))
    server = serve(f"sqlite:///{folder / 'mailpool.db'}", folder)
    port = server.ports["HTTP"]
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            desktop = browser.new_context(
                base_url=f"http://127.0.0.1:{port}", viewport={"width": 1000, "height": 700}
            )
            page = desktop.new_page()
            page.goto("/ui/")
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Identities").wait_for()
            shoot(page, "identities")
            page.set_viewport_size({"width": 1000, "height": 1150})
            page.goto(f"/ui/identities/{HANDLE}")
            shoot(page, "identity", full_page=False)
            page.set_viewport_size({"width": 1000, "height": 700})
            page.goto(f"/ui/identities/{HANDLE}/conversations/{featured}")
            shoot(page, "conversation")
            page.goto(f"/ui/identities/{HANDLE}/events")
            page.get_by_text("Live:").wait_for()
            shoot(page, "live-tail", full_page=False)
            phone = browser.new_context(
                base_url=f"http://127.0.0.1:{port}",
                viewport={"width": 375, "height": 740},
                storage_state=desktop.storage_state(),
            )
            small = phone.new_page()
            small.goto(f"/ui/identities/{HANDLE}")
            shoot(small, "phone", full_page=False)
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
