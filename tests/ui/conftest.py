"""A real `mailpool serve` (SQLite, no dispatcher) and Debian's chromium driven by
Playwright, both shared by the dashboard's tests in one test process.

The browser is Debian's package, never a Playwright download (those hosts are not
reachable). Without it the browser tests skip, saying why; in CI (CI set) they fail
instead, so a missing browser cannot pass for a green run."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.ui.support import Api, IdentitySeed, Process, Tenant, make_tenant, running, serve_args

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Expectations wait for the page (auto-waiting) up to this long: the 2-core CI machine
# runs other test processes beside the browser.
EXPECT_TIMEOUT_MS = 20_000
_orgs = itertools.count(1)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (the dev extra: make install)"
    return None


@dataclass
class Site:
    base_url: str
    grpc_target: str
    database_url: str
    data_dir: Path
    process: Process

    def tenant(self, *seeds: IdentitySeed) -> Tenant:
        """A new org of its own (so tests never see each other's data), with a key and
        these identities (a plain starter identity when none are given)."""
        number = next(_orgs)
        org = f"org{number}-{os.getpid()}"
        chosen = seeds or (IdentitySeed(f"ident{number}.{os.getpid()}@mailpool.local"),)
        return make_tenant(self.database_url, self.data_dir, org, chosen)


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("ui-site")
    shutil.copyfile(migrated_sqlite, folder / "mailpool.db")
    database_url = f"sqlite:///{folder / 'mailpool.db'}"
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": database_url,
        "MAILPOOL_DATA_DIR": str(folder),
        "MAILPOOL_LOG_LEVEL": "WARNING",
    }
    with running(serve_args(), env, folder / "serve.log") as process:
        yield Site(
            base_url=f"http://127.0.0.1:{process.ports['HTTP']}",
            grpc_target=f"127.0.0.1:{process.ports['gRPC']}",
            database_url=database_url,
            data_dir=folder,
            process=process,
        )


@pytest.fixture(scope="package")
def api(site: Site) -> Iterator[Api]:
    client = Api(site.grpc_target)
    yield client
    client.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the dashboard's browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    return context


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: no cookies, no session."""
    created = new_context(browser, site.base_url)
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, key: str) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Identities")).to_be_visible()
