"""The built book, seen the way a reader sees it: every page in headless Chromium, offline (issue 6).

Needs `make book` first (`make test` builds it) and Debian's Chromium (`.ci/run` installs it);
without Chromium the test is skipped with a message saying how to get it.
"""

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import REPO

SITE = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own background traffic is switched off; the closed network would refuse it noisily.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def pages() -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}  # index.html only redirects to intro.html
    return sorted(p for p in SITE.rglob("*.html")
                  if p.name not in skip and not {"_static", "_sources", "_images"} & set(p.relative_to(SITE).parts))


def wait_for_mathjax(page) -> None:
    """Until MathJax 3 has typeset the page (its startup promise has settled)."""
    page.wait_for_function("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise.then(() => true)")


@pytest.fixture(scope="module")
def server():
    if not (SITE / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` (make test does it first)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the site test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def test_every_page_loads_offline_with_images_and_formulas(server, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    checked, problems = [], []
    for path in pages():
        relative = path.relative_to(SITE).as_posix()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, outside = [], []
        page.on("console", lambda message, errors=errors: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))

        def route(request_route, outside=outside):
            host = urlparse(request_route.request.url).hostname
            if host in ("127.0.0.1", "localhost", None):
                request_route.continue_()
            else:  # anything from outside would fail in an offline classroom
                outside.append(request_route.request.url)
                request_route.abort()

        page.route("**/*", route)
        page.goto(f"{server}/{relative}", wait_until="networkidle")
        # Sphinx includes MathJax exactly on the pages that have formulas.
        has_math = page.evaluate("!!document.querySelector('script[src*=\"mathjax\"]')")
        if has_math:
            wait_for_mathjax(page)
            rendered = page.evaluate("document.querySelectorAll('mjx-container').length")
            if rendered == 0:
                problems.append(f"{relative}: formulas present but MathJax rendered none")
        broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        if broken:
            problems.append(f"{relative}: images that did not load: {broken}")
        if errors:
            problems.append(f"{relative}: console errors: {errors}")
        if outside:
            problems.append(f"{relative}: requests outside the site: {outside}")
        page.screenshot(path=str(SCREENSHOTS / (relative.replace("/", "_").removesuffix(".html") + ".png")), full_page=True)
        checked.append(f"{relative} ({'math' if has_math else 'no math'}, {page.evaluate('document.images.length')} images)")
        page.close()
    print("\npages checked:\n  " + "\n  ".join(checked))
    assert len(checked) >= 10, checked
    assert not problems, "\n".join(problems)


def test_chapter_pages_render_math_offline(server, browser):
    """A test that can fail: the AlexNet chapter has formulas, and they must come out as MathJax output."""
    page = browser.new_page()
    page.goto(f"{server}/chapters/01_alexnet.html", wait_until="networkidle")
    wait_for_mathjax(page)
    assert page.evaluate("document.querySelectorAll('mjx-container').length") >= 3
    scripts = page.evaluate("Array.from(document.scripts).map(s => s.src).filter(Boolean)")
    assert any("_static/mathjax/tex-chtml.js" in s for s in scripts)
    assert all(urlparse(s).hostname in ("127.0.0.1", "localhost") for s in scripts), scripts
    page.close()
