"""The built book, seen the way a reader sees it: every page in headless Chromium, offline (issues 6 and 13).

Every page is opened at 1280 px (a laptop) and at 390 px (a phone), and checked for what a reader meets:

- the menu button opens the navigation at 390 px (and the page-contents button opens the contents);
- no code block, output, table or display formula clips its content: it fits, wraps, or scrolls with a
  scrollbar one can see, and nothing sticks out of the column;
- no text in the navigation, the titles or the search results shows LaTeX (``\\(``, ``$``);
- no blank gap taller than 60 px between (or inside) consecutive cells;
- each control of each feature explorer changes the explorer's picture (pixels) and its label;
- at 1280 px the code blocks (code cells and the library code a chapter shows) that need horizontal
  scrolling are counted over the whole book and reported (issue 24 asks for at most 1 in 10; not yet met);
- the page weighs at most 1.5 MB beyond the shell that every page shares (theme, Sphinx's scripts, MathJax);
- no console errors, no request leaving localhost, every image loaded, formulas rendered by MathJax,
  every link inside the book leads to a page that exists.

Screenshots go to ``_build/screenshots/``: ``<page>_<width>.png`` (the whole page; Chromium leaves the
scrollbars out of a whole-page picture taken as a phone) and ``<page>_390_menu.png`` (the first screen
with the menu open); the weights to ``_build/screenshots/weights_<width>.txt``. The ``test_check_*`` tests show that each check fails on a page made
broken on purpose. Needs `make book` first (`make test` builds it) and Debian's Chromium (`.ci/run`
installs it); without Chromium the browser tests are skipped with a message saying how to get it.
"""

import functools
import http.server
import re
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import REPO

SITE = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own background traffic is switched off; the closed network would refuse it noisily.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
WIDTHS = (1280, 390)
PHONE = 960  # below the theme's breakpoint: the sidebars live behind buttons. Narrower pages are opened
# as on a phone (mobile emulation), whose overlay scrollbars take no room and show only while one
# scrolls: there a scrollbar counts as visible only where the book's CSS draws one that always shows.
HEIGHT = 900
WEIGHT_LIMIT = 1_500_000  # bytes a page may add to the shell on first load (issue 13)
SCROLLING_CODE_LIMIT = 0.1  # the share of code blocks that may scroll sideways at 1280 px (issue 24)
GAP_LIMIT = 60            # px of blank space allowed between consecutive cells
TIMEOUT = 120_000         # ms for a page to load (or MathJax to finish) before the test gives up
LOCAL = ("127.0.0.1", "localhost", None)

# The shell: what every page loads whatever its content (the theme's files, Sphinx's and its
# extensions' scripts and styles, MathJax and its fonts, the search index, the favicon). The ipywidgets
# manager is not shell: a page loads it only when it stores widgets (myst-nb's nb_ipywidgets_js).
WIDGET_MANAGER = ("_static/html-manager/", "_static/require.js")


def is_shell(path: str) -> bool:
    path = path.lstrip("/")
    if path.startswith(WIDGET_MANAGER):
        return False
    return path.startswith("_static/") or path == "searchindex.js"


def page_weight(sizes: dict[str, int]) -> tuple[int, int]:
    """(bytes of the shell, bytes of the page itself) from {site path: bytes} of one page load."""
    shell = sum(size for path, size in sizes.items() if is_shell(path))
    return shell, sum(sizes.values()) - shell


def pages() -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}  # the top index.html only redirects to intro.html
    return sorted(p for p in SITE.rglob("*.html")
                  if p.relative_to(SITE).as_posix() not in skip
                  and not {"_static", "_sources", "_images"} & set(p.relative_to(SITE).parts))


def site_file(url: str) -> Path | None:
    """The file of the built site that a local URL (or an href on a page) points at."""
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL or parsed.scheme not in ("http", "https"):
        return None
    return SITE / unquote(parsed.path).lstrip("/")


# ---------------------------------------------------------------------------------------------------
# The checks. Each returns a list of problems (empty: fine), so that it can be shown failing below.

WAIT_FOR_MATHJAX = """() => !window.MathJax || !MathJax.startup || !MathJax.startup.promise ? null :
  MathJax.startup.promise.then(() => true)"""

# Text a reader reads as navigation: LaTeX source there was never typeset (MathJax typesets the article).
LATEX_IN_NAVIGATION = r"""() => {
  const latex = /\\\(|\\\)|\\\[|\\\]|\$/;
  const problems = [];
  if (latex.test(document.title)) problems.push("tab title: " + document.title);
  const areas = ["#pst-primary-sidebar", "#pst-primary-sidebar-modal", "#pst-secondary-sidebar",
    "#pst-secondary-sidebar-modal", ".prev-next-area", ".bd-breadcrumbs", "nav", "#search-results",
    "article h1", "article h2", "article h3", "article h4"];
  for (const area of document.querySelectorAll(areas.join(","))) {
    const walker = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (latex.test(node.textContent)) problems.push("LaTeX in text: " + node.textContent.trim().slice(0, 80));
    }
    if (!area.matches("article h1, article h2, article h3, article h4") && area.querySelector("mjx-container")) {
      problems.push("a formula typeset in the navigation: " + area.textContent.trim().slice(0, 80));
    }
  }
  return [...new Set(problems)];
}"""

# Something that is wider than its box must scroll with a visible scrollbar; nothing may stick out of
# the column unless a scrolling box with a visible scrollbar holds it.
CLIPPING = """() => {
  const column = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const edge = column.getBoundingClientRect().right + 1;
  const bar = (el) => {
    const style = getComputedStyle(el);
    if (!["auto", "scroll"].includes(style.overflowX)) return false;
    const room = el.offsetHeight - el.clientHeight - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
    return room >= 6;  // an overlay scrollbar takes no room: invisible until one scrolls
  };
  const heldByScroller = (el) => {
    for (let a = el.parentElement; a && a !== column.parentElement; a = a.parentElement) {
      if (a.scrollWidth > a.clientWidth + 1 && bar(a)) return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ?
    "." + el.className.trim().split(/\\s+/).slice(0, 2).join(".") : "") + ": " +
    (el.textContent || el.getAttribute("src") || "").trim().slice(0, 60);
  const problems = [];
  const selector = "pre, div.highlight, div.cell_output .output, mjx-container, table, img, canvas, figure, " +
    "p, .feature-explorer, .table-wrapper";
  for (const el of column.querySelectorAll(selector)) {
    if (!el.getClientRects().length) continue;
    const overflowX = getComputedStyle(el).overflowX, box = el.getBoundingClientRect();
    // what it shows reaches this far: its box, or past it where its overflow is left visible
    const right = overflowX === "visible" ? Math.max(box.right, box.left + el.scrollWidth) : box.right;
    if (overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1 && !bar(el)) {
      problems.push(`${el.scrollWidth - el.clientWidth} px cut off, no visible scrollbar: ${name(el)}`);
    } else if (right > edge && !heldByScroller(el)) {
      problems.push(`sticks out of the column by ${Math.round(right - edge)} px: ${name(el)}`);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide at ${window.innerWidth} px`);
  }
  return problems;
}"""

# Blank space between consecutive cells, and inside them: the vertical stretches that nothing paints.
GAPS = """(limit) => {
  const painted = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    const s = getComputedStyle(el);
    if (s.visibility === "hidden" || +s.opacity === 0) return false;
    if (["IMG", "CANVAS", "SVG", "svg", "VIDEO", "IFRAME", "INPUT", "SELECT", "MJX-CONTAINER"].includes(el.tagName)) return true;
    if (s.backgroundColor !== "rgba(0, 0, 0, 0)" || s.backgroundImage !== "none") return true;
    if (parseFloat(s.borderTopWidth) || parseFloat(s.borderBottomWidth)) return true;
    return Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
  };
  const problems = [];
  const cells = Array.from(document.querySelectorAll("div.cell"));
  const runs = [];
  for (const cell of cells) {
    const run = runs[runs.length - 1];
    if (run && run[run.length - 1].nextElementSibling === cell) run.push(cell); else runs.push([cell]);
  }
  for (const run of runs) {
    const boxes = [];
    for (const cell of run) {
      for (const el of [cell, ...cell.querySelectorAll("*")]) {
        if (painted(el)) { const r = el.getBoundingClientRect(); boxes.push([r.top, r.bottom, el]); }
      }
    }
    boxes.sort((a, b) => a[0] - b[0]);
    let bottom = null;
    for (const [top, end, el] of boxes) {
      if (bottom !== null && top - bottom > limit) {
        const cell = el.closest("div.cell");
        problems.push(`${Math.round(top - bottom)} px blank above cell ${cells.indexOf(cell) + 1} (${(cell.textContent || "").trim().slice(0, 50)})`);
      }
      if (bottom === null || end > bottom) bottom = end;
    }
  }
  return problems;
}"""

# Code blocks (a code cell's input, or library code shown with ``source.show``) and the ones whose
# lines are wider than the column, so that a reader must scroll sideways to read them.
CODE_BLOCKS = """() => {
  const blocks = Array.from(document.querySelectorAll('div.highlight pre'))
    .filter((pre) => !pre.closest('.cell_output'));
  return [blocks.length, blocks.filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
    .map((pre) => pre.textContent.split('\\n').reduce((a, b) => (a.length >= b.length ? a : b)).slice(0, 90))];
}"""

EXPLORER_STATE = """(k) => {
  const root = document.querySelectorAll(".feature-explorer")[k];
  const canvases = Array.from(root.querySelectorAll("canvas"));
  const map = root.querySelector("canvas.fx-map") || canvases[canvases.length - 1];
  let flat = true;  // the map is one colour (a dead unit): two such maps may rightly look alike
  if (map && map.width && map.height) {
    const px = map.getContext("2d").getImageData(0, 0, map.width, map.height).data;
    for (let i = 4; i < px.length && flat; i += 4)
      flat = px[i] === px[0] && px[i + 1] === px[1] && px[i + 2] === px[2] && px[i + 3] === px[3];
  }
  return {drawn: !!root.dataset.drawn && root.dataset.drawn === root.dataset.state,
          pictures: canvases.map((c) => c.toDataURL()).join("|"), map: map ? map.toDataURL() : "", flat,
          label: root.querySelector(".fx-label").textContent};
}"""

EXPLORER_MOVE = """([k, cls, value]) => {
  const control = document.querySelectorAll(".feature-explorer")[k].querySelector("." + cls);
  control.value = String(value);
  control.dispatchEvent(new Event("input", {bubbles: true}));
  control.dispatchEvent(new Event("change", {bubbles: true}));
}"""

EXPLORER_CONTROL = """([k, cls]) => {
  const c = document.querySelectorAll(".feature-explorer")[k].querySelector("." + cls);
  if (!c) return null;
  const r = c.getBoundingClientRect();
  const values = c.tagName === "SELECT" ? Array.from(c.options).map((o) => o.value) :
    Array.from({length: +c.max - +c.min + 1}, (_, i) => String(+c.min + i));
  return {value: c.value, values, disabled: c.disabled, width: r.width, right: r.right};
}"""


def _explorer_state(page, k: int) -> dict:
    page.wait_for_function(f"() => {{ const r = document.querySelectorAll('.feature-explorer')[{k}]; "
                           "return !!r.dataset.drawn && r.dataset.drawn === r.dataset.state; }", timeout=30_000)
    return page.evaluate(EXPLORER_STATE, k)


def _sweep(page, k: int, cls: str, control: dict) -> list[str]:
    """Move one control through every one of its values, one step at a time. Each step must change the label
    and the picture (two one-colour maps, dead units, may look alike); each option of the layer menu must
    show a picture that no other option shows (a layer that repeats another layer's maps shows nothing new)."""
    where = f"explorer {k + 1}: {cls}"
    previous, problems, changed = _explorer_state(page, k), [], False
    shown = {control["value"]: previous}
    for value in [v for v in control["values"] if v != control["value"]]:
        page.evaluate(EXPLORER_MOVE, [k, cls, value])
        try:
            now = _explorer_state(page, k)
        except Exception:  # noqa: BLE001 - a timeout is the finding
            problems.append(f"{where} = {value}: never finished drawing")
            break
        if now["label"] == previous["label"]:
            problems.append(f"{where} = {value}: the label stays {now['label']!r}")
        if now["pictures"] == previous["pictures"] and not (now["flat"] and previous["flat"]):
            problems.append(f"{where} = {value}: the picture stays as it was ({previous['label']!r})")
        elif cls == "fx-layer":
            same = [v for v, seen in shown.items() if seen["map"] == now["map"] and not (seen["flat"] and now["flat"])]
            if same:
                problems.append(f"{where} = {value}: shows the same picture as {cls} = {same[0]} "
                                f"({now['label']!r})")
        changed = changed or now["pictures"] != previous["pictures"]
        shown[value], previous = now, now
    if not changed:
        problems.append(f"{where}: moving it through {control['values']} never changes the picture "
                        f"({previous['label']!r})")
    return problems


def check_explorers(page) -> list[str]:
    """Every control of every explorer on the page, through every value: each step changes the picture
    (pixels) and the label, and no two options of the layer menu show the same picture."""
    problems = []
    width = page.evaluate("window.innerWidth")
    for k in range(page.locator(".feature-explorer").count()):
        try:
            _explorer_state(page, k)
        except Exception:  # noqa: BLE001 - a timeout is the finding
            problems.append(f"explorer {k + 1}: never finished drawing")
            continue
        for cls in ("fx-image", "fx-channel", "fx-layer"):  # the layer last: a layer of units disables the channel
            control = page.evaluate(EXPLORER_CONTROL, [k, cls])
            if control is None:
                problems.append(f"explorer {k + 1}: no {cls} control")
                continue
            if control["width"] < 40 or control["right"] > width:
                problems.append(f"explorer {k + 1}: {cls} is {control['width']:.0f} px wide, right edge at "
                                f"{control['right']:.0f} px of {width}")
            if control["disabled"]:
                problems.append(f"explorer {k + 1}: {cls} is disabled")
                continue
            found = _sweep(page, k, cls, control)
            problems += found[:4] + ([f"explorer {k + 1}: {cls}: {len(found) - 4} more like these"]
                                     if len(found) > 4 else [])
    return problems


def check_menus(page, shot: Path | None = None) -> list[str]:
    """At phone width the visible menu button opens the site navigation, and the page-contents button
    (where the page has contents) opens them. ``shot``: a screenshot of the open menu goes there."""
    problems = []
    for toggle, dialog, what in ((".primary-toggle", "#pst-primary-sidebar-modal", "menu"),
                                 (".secondary-toggle", "#pst-secondary-sidebar-modal", "page contents")):
        buttons = page.locator(f"{toggle}:visible")
        if buttons.count() == 0:
            if what == "menu":
                problems.append("no visible menu button")
            continue
        buttons.first.click()
        try:
            page.wait_for_function(f"() => document.querySelector('{dialog}') && document.querySelector('{dialog}').open",
                                   timeout=10_000)
        except Exception:  # noqa: BLE001 - a timeout is the finding
            problems.append(f"the {what} button does nothing: {dialog} did not open")
            continue
        links = page.evaluate(f"""() => Array.from(document.querySelectorAll('{dialog} a')).filter((a) => {{
            const r = a.getBoundingClientRect(); return r.width > 0 && r.height > 0 && r.top < window.innerHeight;
          }}).length""")
        if links < (3 if what == "menu" else 1):
            problems.append(f"the {what} opened with {links} visible links")
        if shot is not None and what == "menu":
            page.screenshot(path=str(shot))
        page.keyboard.press("Escape")
        try:
            page.wait_for_function(f"() => !document.querySelector('{dialog}').open", timeout=10_000)
        except Exception:  # noqa: BLE001
            problems.append(f"the {what} does not close with Escape")
    return problems


def check_links_and_favicon(page) -> list[str]:
    """Every link inside the book and the favicon lead to files that exist (no 404 for a reader)."""
    problems = []
    hrefs = page.evaluate("""() => [...Array.from(document.querySelectorAll('a[href]')).map((a) => a.href),
        ...Array.from(document.querySelectorAll('link[rel~=icon]')).map((l) => l.href)]""")
    if not page.evaluate("!!document.querySelector('link[rel~=icon]')"):
        problems.append("no favicon: browsers ask for /favicon.ico and log a 404")
    for href in dict.fromkeys(hrefs):
        target = site_file(href.split("#")[0])
        if target is not None and not (target.is_file() or (target / "index.html").is_file()):
            problems.append(f"link to a page that does not exist: {href}")
    return problems


# ---------------------------------------------------------------------------------------------------
# Opening pages

class Visit:
    """A page opened in Chromium with everything a reader's browser would log: console errors, requests
    that leave localhost, and the bytes of every file the page loaded from the site."""

    def __init__(self, browser, width: int):
        self.context = new_context(browser, width)
        self.page = self.context.new_page()
        self.errors, self.outside, self.sizes = [], [], {}
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfinished", self._loaded)
        self.page.route("**/*", self._route)

    def _route(self, route):
        host = urlparse(route.request.url).hostname
        if host in LOCAL:
            route.continue_()
        else:  # anything from outside would fail in an offline classroom
            self.outside.append(route.request.url)
            route.abort()

    def _loaded(self, request):
        path = site_file(request.url)
        if path is not None and path.is_file():
            self.sizes[urlparse(request.url).path] = path.stat().st_size

    def open(self, url: str) -> bool:
        self.page.goto(url, wait_until="networkidle")
        has_math = self.page.evaluate("!!document.querySelector('script[src*=\"mathjax\"]')")
        if has_math:  # Sphinx includes MathJax exactly on the pages that have formulas
            self.page.wait_for_function("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)")
            self.page.evaluate(WAIT_FOR_MATHJAX)
        return has_math

    def close(self) -> None:
        self.context.close()

    def problems(self) -> list[str]:
        found = []
        broken = self.page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        if broken:
            found.append(f"images that did not load: {broken}")
        if self.errors:
            found.append(f"console errors: {self.errors}")
        if self.outside:
            found.append(f"requests outside the site: {self.outside}")
        return found


def new_context(browser, width: int, height: int = HEIGHT):
    phone = width < PHONE
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone)
    context.set_default_timeout(TIMEOUT)  # generous: a busy 2-core machine loads a chapter in seconds
    return context


@pytest.fixture(scope="module")
def server():
    if not (SITE / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` (make test does it first)")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would bury pytest's report
        pass


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the site test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        # Playwright hides scrollbars by default; a reader sees them, and so do the screenshots.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS,
                                              ignore_default_args=["--hide-scrollbars"])
        yield chromium
        chromium.close()


# ---------------------------------------------------------------------------------------------------
# The book

def shot_name(relative: str, width: int) -> str:
    return f"{relative.replace('/', '_').removesuffix('.html')}_{width}.png"


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_as_a_reader_sees_it(server, browser, width):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in [*SCREENSHOTS.glob(f"*_{width}.png"), *SCREENSHOTS.glob(f"*_{width}_menu.png")]:
        old.unlink()  # a page that is gone must not leave its picture behind
    started, checked, problems, weights = time.perf_counter(), [], [], []
    code_blocks, scrolling = 0, []
    for path in pages():
        relative = path.relative_to(SITE).as_posix()
        visit = Visit(browser, width)
        page = visit.page
        has_math = visit.open(f"{server}/{relative}")
        found = []
        formulas, unrendered = page.evaluate("""() => [document.querySelectorAll('.math').length,
            Array.from(document.querySelectorAll('.math:not(:has(mjx-container))')).map((m) => m.textContent.slice(0, 60))]""")
        if unrendered:  # Sphinx marks every formula .math; MathJax puts an mjx-container in each
            found.append(f"{len(unrendered)} of {formulas} formulas not rendered by MathJax: {unrendered[:3]}")
        found += page.evaluate(LATEX_IN_NAVIGATION)
        found += page.evaluate(CLIPPING)
        found += page.evaluate(GAPS, GAP_LIMIT)
        blocks, wide = page.evaluate(CODE_BLOCKS)
        code_blocks += blocks
        scrolling += [f"{relative}: {line}" for line in wide]
        found += check_links_and_favicon(page)
        explorers = page.locator(".feature-explorer").count()
        page.screenshot(path=str(SCREENSHOTS / shot_name(relative, width)), full_page=True)
        found += check_explorers(page)  # after the screenshot: it moves the controls
        if width < PHONE:
            found += check_menus(page, SCREENSHOTS / shot_name(relative, width).replace(".png", "_menu.png"))
        found += visit.problems()
        shell, own = page_weight(visit.sizes)
        if own > WEIGHT_LIMIT:
            found.append(f"weighs {own / 1e6:.2f} MB beyond the shell (limit {WEIGHT_LIMIT / 1e6:.1f} MB): "
                         f"{sorted(visit.sizes.items(), key=lambda kv: -kv[1])[:5]}")
        weights.append(f"{relative:32s} {own / 1e6:6.3f} MB own + {shell / 1e6:6.3f} MB shell = "
                       f"{(own + shell) / 1e6:6.3f} MB")
        problems += [f"{relative} at {width} px: {problem}" for problem in found]
        checked.append(f"{relative} ({formulas} formulas{'' if has_math else ', no MathJax'}, "
                       f"{page.evaluate('document.images.length')} images, {explorers} explorers)")
        visit.close()
    elapsed = time.perf_counter() - started
    # Measured, not yet enforced: with the book's 12 px code type the column holds 90 characters at
    # 1280 px; 40 of 215 blocks still scroll (6 in chapters, 34 in homework, whose released lines
    # run to 138 characters). Issue 24 §8 stays open until it holds.
    if width >= PHONE and len(scrolling) > SCROLLING_CODE_LIMIT * code_blocks:
        print(f"{len(scrolling)} of {code_blocks} code blocks scroll sideways at {width} px (at most "
              f"{SCROLLING_CODE_LIMIT:.0%}); their longest lines:\n    " + "\n    ".join(scrolling))
    report = "\n".join([f"width {width} px, {len(checked)} pages in {elapsed:.0f} s, "
                        f"{len(scrolling)} of {code_blocks} code blocks scroll sideways", *weights])
    (SCREENSHOTS / f"weights_{width}.txt").write_text(report + "\n")
    print("\n" + report + "\npages checked:\n  " + "\n  ".join(checked))
    assert len(checked) >= 10, checked
    assert not problems, "\n".join(problems)


# Sphinx says "found" once every result is listed; each result's summary arrives after it, fetched.
SEARCH_DONE = """() => {
  const status = document.querySelector("#search-results .search-summary");
  if (!status || !/found|did not match/i.test(status.textContent)) return false;
  return Array.from(document.querySelectorAll("#search-results ul.search li")).every((li) => li.querySelector(".context"));
}"""


def test_search_results_show_no_latex(server, browser):
    """Search results list page and section titles; those with formulas must not show their LaTeX."""
    visit = Visit(browser, 1280)
    problems = []
    for query in ("convolution", "network", "1x1", "batch normalization", "homework"):
        visit.page.goto(f"{server}/search.html?q={query}", wait_until="networkidle")
        visit.page.wait_for_function(SEARCH_DONE)
        hits = visit.page.evaluate("document.querySelectorAll('#search-results ul.search li').length")
        problems += [f"search {query!r}: {p}" for p in visit.page.evaluate(LATEX_IN_NAVIGATION)]
        if query == "convolution" and hits == 0:
            problems.append("search 'convolution' found nothing")
    problems += visit.problems()
    visit.close()
    assert not problems, "\n".join(problems)


def test_chapter_pages_render_math_offline(server, browser):
    """A test that can fail: the AlexNet chapter has formulas, and they must come out as MathJax output."""
    context = new_context(browser, 1280)
    page = context.new_page()
    page.goto(f"{server}/chapters/01_alexnet.html", wait_until="networkidle")
    page.wait_for_function("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)")
    page.evaluate(WAIT_FOR_MATHJAX)
    assert page.evaluate("document.querySelectorAll('mjx-container').length") >= 3
    scripts = page.evaluate("Array.from(document.scripts).map(s => s.src).filter(Boolean)")
    assert any("_static/mathjax/tex-chtml.js" in s for s in scripts)
    assert all(urlparse(s).hostname in ("127.0.0.1", "localhost") for s in scripts), scripts
    context.close()


def test_chapter_numbers_match_homework_numbers():
    """Chapter n (AlexNet = 1 … DenseNet = 7) goes with homework n; the introduction has no number."""
    if not (SITE / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` (make test does it first)")
    # the article's title (the print-only copy above it has no number), with its section number if any
    number = re.compile(r'<h1>(?:<span class="section-number">([\d.]+)\s*</span>)?([^<]*)<a class="headerlink"')
    intro = number.search((SITE / "chapters" / "00_ilsvrc.html").read_text())
    assert intro and intro.group(1) is None, f"the introduction is numbered: {intro and intro.groups()}"
    homework = sorted((SITE / "homework").glob("hw*.html"))
    assert len(homework) >= 7, homework
    for page in homework:
        n, name = re.match(r"hw(\d+)_(\w+)\.html", page.name).groups()
        chapter = SITE / "chapters" / f"{int(n):02d}_{name}.html"
        assert chapter.exists(), f"{page.name} has no chapter {chapter.name}"
        found = number.search(chapter.read_text())
        assert found and found.group(1) == f"{int(n)}.", (chapter.name, found and found.groups())
        title = number.search(page.read_text())
        assert title and f"Homework {int(n)}" in title.group(2), (page.name, title and title.groups())


# ---------------------------------------------------------------------------------------------------
# Each check fails on a page broken on purpose

ARTICLE = """<!doctype html><html><head><title>{title}</title><meta name=viewport content="width=device-width">
<style>body{{margin:0}} article.bd-article{{width:300px;padding:0 10px}} div.cell{{margin:8px 0}}
pre{{margin:0;background:#f4f4f4}}</style></head>
<body><nav>{nav}</nav><main><article class="bd-article">{body}</article></main></body></html>"""

FROZEN_EXPLORER = """<div class="feature-explorer" data-state="0|c0" data-drawn="0|c0">
<input class="fx-image" type="range" min="0" max="3" value="0" style="width:120px">
<select class="fx-layer" style="width:120px"><option value="0">a</option><option value="1">b</option></select>
<input class="fx-channel" type="range" min="0" max="3" value="0" style="width:120px">
<canvas width="8" height="8"></canvas><div class="fx-label">image 0</div>
<script>
  var root = document.currentScript.parentElement;
  var ctx = root.querySelector("canvas").getContext("2d");
  ctx.fillStyle = "#123456"; ctx.fillRect(0, 0, 8, 8);
  root.addEventListener("input", function (e) {  // the label follows; the picture only for the image
    var i = root.querySelector(".fx-image").value, c = root.querySelector(".fx-channel").value;
    root.querySelector(".fx-label").textContent = "image " + i + " channel " + c;
    if (e.target.classList.contains("fx-image")) { ctx.fillStyle = "#" + (i * 3) + "0a0b0"; ctx.fillRect(0, 0, 8, 8); }
    root.dataset.state = root.dataset.drawn = i + "|c" + c;
  });
</script></div>"""


@pytest.fixture
def scratch(browser):
    """A blank page on a phone, 390 px wide, for small hand-made HTML."""
    context = new_context(browser, 390, 700)
    yield context.new_page()
    context.close()


def test_check_clipping_fails_on_clipped_code_and_formulas(scratch):
    long = "x = " + "1 + " * 60
    good = ARTICLE.format(title="ok", nav="", body=f"<div class=cell_output><pre style='white-space:pre-wrap'>{long}</pre></div>")
    scratch.set_content(good)
    assert scratch.evaluate(CLIPPING) == []
    for body in (f"<pre style='overflow:hidden'>{long}</pre>",          # cut off
                 f"<pre style='overflow-x:auto'>{long}</pre>",           # an overlay scrollbar: invisible
                 f"<pre style='overflow:visible'>{long}</pre>",          # runs past the column
                 "<mjx-container display='true' style='display:block;overflow:hidden'>"
                 f"<span style='white-space:nowrap'>{long}</span></mjx-container>"):
        scratch.set_content(ARTICLE.format(title="broken", nav="", body=body))
        assert scratch.evaluate(CLIPPING), body
    styled = ("<style>pre::-webkit-scrollbar{height:10px} pre::-webkit-scrollbar-thumb{background:#888}</style>"
              f"<pre style='overflow-x:auto'>{long}</pre>")
    scratch.set_content(ARTICLE.format(title="ok", nav="", body=styled))
    assert scratch.evaluate(CLIPPING) == []  # the book's CSS: a scrollbar that is always shown


def test_check_latex_fails_on_raw_latex_in_navigation_and_titles(scratch):
    scratch.set_content(ARTICLE.format(title="GoogLeNet", nav="<a href='#'>1×1 convolutions</a>", body="<h1>Fine</h1>"))
    assert scratch.evaluate(LATEX_IN_NAVIGATION) == []
    for title, nav, body in (("GoogLeNet", r"<a href='#'>\(1\times 1\) convolutions</a>", ""),
                             (r"\(1\times 1\) convolutions", "", ""),
                             ("NiN", "<a href='#'>$1\\times 1$</a>", ""),
                             ("NiN", "<a href='#'><mjx-container>1×1</mjx-container></a>", ""),
                             ("NiN", "", r"<h2>Why \(1\times 1\)?</h2>")):
        scratch.set_content(ARTICLE.format(title=title, nav=nav, body=body))
        assert scratch.evaluate(LATEX_IN_NAVIGATION), (title, nav, body)


def test_search_summaries_get_formulas_as_text(scratch):
    """site/theme/book.js turns the LaTeX of a formula into text in search summaries."""
    scratch.add_script_tag(content=(REPO / "site" / "theme" / "book.js").read_text())
    cases = {r"\(3\times 3\)": "3×3", r"\(\gamma = \sqrt{\mathrm{Var}[x]}\)": "γ = √(Var[x])",
             r"\(\mathcal{B} = \{x_1, \dots, x_m\}\)": "B = {x_1, …, x_m}", r"\[\frac{a}{b}\]": "(a)/(b)"}
    for tex, text in cases.items():
        assert scratch.evaluate("(tex) => bookTexToText(tex)", tex) == text


def test_check_gaps_fails_on_a_blank_gap_between_cells(scratch):
    cell = "<div class='cell'><div class='cell_input'><pre>print(1)</pre></div>{extra}</div>"
    fine = cell.format(extra="") + cell.format(extra="<div class='cell_output'><pre>1</pre></div>")
    scratch.set_content(ARTICLE.format(title="ok", nav="", body=fine))
    assert scratch.evaluate(GAPS, GAP_LIMIT) == []
    hidden_widget = "<div class='cell_output'><pre>plot</pre><div class='output' style='height:200px'></div></div>"
    for body in (cell.format(extra=hidden_widget) + cell.format(extra=""),
                 cell.format(extra="<div style='height:120px'></div><pre>late output</pre>")):
        scratch.set_content(ARTICLE.format(title="broken", nav="", body=body))
        assert scratch.evaluate(GAPS, GAP_LIMIT), body


def test_check_explorers_fails_on_a_frozen_explorer(scratch):
    scratch.set_content(ARTICLE.format(title="frozen", nav="", body=FROZEN_EXPLORER))
    problems = check_explorers(scratch)
    assert any("fx-channel" in p for p in problems) and any("fx-layer" in p for p in problems), problems
    assert not any("fx-image" in p for p in problems), problems  # the image slider does move the picture


def generated_explorer(model, layers, side=16, images=4):
    """The explorer book.viz writes into a stored chapter, for a small untrained model, on a page of its own:
    the check runs on what the generator makes today, without building the book."""
    import torch

    from book import viz

    torch.manual_seed(0)
    model.eval()
    html = viz.static_explorer(model, torch.rand(images, 1, side, side), layers,
                               [f"class {i}" for i in range(images)]).html
    return ARTICLE.format(title="explorer", nav="", body=html).replace("width:300px", "width:370px")


def dense_explorer():
    """A small DenseNet-BC, seen after its stem and after each dense block and transition (as chapter 07)."""
    from book.models.densenet import DenseNet

    layers = ["features.relu0", "features.denseblock1", "features.transition1", "features.denseblock2"]
    return generated_explorer(DenseNet(4, 8, (2, 2), 10, 1, stem="small"), layers)


def test_explorers_that_book_viz_writes_pass_the_check(scratch):
    """Every control of the generated explorer, through every value, changes what is shown; a dense block's
    first channels are its input's maps, so without leaving those out its picture would be its input's."""
    from torch import nn

    plain = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, stride=2, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 20), nn.ReLU())
    for page in (dense_explorer(), generated_explorer(plain, ["1", "3", "6"])):
        errors = []
        scratch.on("pageerror", lambda error: errors.append(str(error)))
        scratch.set_content(page)
        assert check_explorers(scratch) == [], page[:200]
        assert not errors, errors


def test_check_explorers_fails_when_a_layer_shows_another_layers_maps(scratch):
    """A layer that only passes its input on (nn.Identity here, as a dense block's first channels) shows the
    same picture as the layer before it: the layer menu seems to do nothing (issue 24 §8)."""
    from torch import nn

    copy = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Identity(), nn.Conv2d(6, 4, 3, padding=1))
    scratch.set_content(generated_explorer(copy, ["1", "2", "3"]))
    problems = check_explorers(scratch)
    assert any("fx-layer = 1: the picture stays" in p for p in problems), problems
    assert not any("fx-image" in p or "fx-channel" in p for p in problems), problems


def test_check_weight_counts_the_widget_manager_as_the_pages_own():
    shell_files = {"/_static/styles/theme.css": 300_000, "/_static/mathjax/tex-chtml.js": 1_200_000,
                   "/_static/vendor/fontawesome/webfonts/fa-solid-900.woff2": 150_000, "/searchindex.js": 60_000}
    light = {**shell_files, "/chapters/01_alexnet.html": 400_000, "/_images/plot.png": 90_000}
    assert page_weight(light) == (1_710_000, 490_000)
    heavy = {**light, "/_static/html-manager/embed-amd.js": 3_500_000, "/_static/require.js": 90_000}
    assert page_weight(heavy)[1] > WEIGHT_LIMIT


def test_check_menus_fails_without_the_books_fix(server, browser):
    """pydata-sphinx-theme #2451: without site/theme/book.js the phone menu button does nothing."""
    visit = Visit(browser, 390)
    visit.page.route("**/_static/book.js*", lambda route: route.fulfill(body="", content_type="text/javascript"))
    visit.open(f"{server}/chapters/01_alexnet.html")
    problems = check_menus(visit.page)
    visit.close()
    assert any("menu button does nothing" in p for p in problems), problems


def test_check_clipping_fails_without_the_books_css(server, browser):
    """On a phone the theme's scrollbars are overlays: without site/theme/book.css wide code is clipped."""
    visit = Visit(browser, 390)
    visit.page.route("**/_static/book.css*", lambda route: route.fulfill(body="", content_type="text/css"))
    visit.open(f"{server}/chapters/01_alexnet.html")
    problems = visit.page.evaluate(CLIPPING)
    visit.close()
    assert any("no visible scrollbar: pre" in p for p in problems), problems


def test_check_requests_fails_on_missing_images_outside_requests_and_errors(server, browser):
    visit = Visit(browser, 1280)
    broken = ("<!doctype html><title>broken</title><img src='/_images/there-is-no-such-image.png'>"
              "<img src='https://cdn.example.org/figure.png'><a href='/chapters/no-such-chapter.html'>x</a>"
              "<script>console.error('something failed')</script>")
    visit.page.route(f"{server}/broken.html", lambda route: route.fulfill(body=broken, content_type="text/html"))
    visit.open(f"{server}/broken.html")
    problems = " | ".join(visit.problems() + check_links_and_favicon(visit.page))
    visit.close()
    for expected in ("images that did not load", "console errors", "requests outside the site",
                     "no-such-chapter", "no favicon"):
        assert expected in problems, (expected, problems)


def test_check_code_blocks_counts_the_blocks_that_scroll(scratch):
    short, wide = "x = 1\ny = 2", "x = " + "1 + " * 60
    block = "<div class='highlight'><pre style='overflow-x:auto'>{}</pre></div>"
    output = "<div class='cell_output'><div class='highlight'><pre style='overflow-x:auto'>{}</pre></div></div>"
    body = block.format(short) + block.format(wide) + output.format(wide)  # outputs are not code blocks
    scratch.set_content(ARTICLE.format(title="code", nav="", body=body))
    blocks, scrolling = scratch.evaluate(CODE_BLOCKS)
    assert blocks == 2 and len(scrolling) == 1 and scrolling[0].startswith("x = 1 + 1 +")
