"""The rendered book in a real browser: headless Chromium opens every page of the build.

Each page is served from localhost (nothing else is reachable), and a full-page screenshot
is saved to ``<build>/screenshots/``. Needs Debian's ``chromium`` package; without it these
tests skip, unless ``MGS_BROWSER_TESTS=required`` (as ``.ci/run`` sets), when they fail.

Every page is also read at a 1280 px viewport, with its dropdowns (solutions, hidden cells)
opened, for what a reader would see cut: an output area, a table or a display equation wider
than its box or its scroll container; and for placeholder text ("pending", "not timed in
this build") in the prose and outputs of the full edition. Each check names every page and
element at fault, not only the first.
"""

import functools
import http.server
import os
import re
import shutil
import threading
from urllib.parse import urlparse

import pytest
from bookfiles import ROOT, toc_files

pytestmark = pytest.mark.book

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update"]  # fmt: skip
PAGES = [p.relative_to(ROOT).with_suffix(".html").as_posix() for p in toc_files()]
NOTEBOOKS = {p.relative_to(ROOT).with_suffix(".html").as_posix(): p.relative_to(ROOT).as_posix()
             for p in toc_files() if p.suffix == ".ipynb"}  # fmt: skip

# Text nodes outside these elements are prose, where no TeX delimiter may survive.
RAW_TEX = """() => {
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "MJX-CONTAINER", "KBD"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const bad = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let el = node.parentElement, skipped = false;
    for (; el; el = el.parentElement) {
      if (skip.has(el.tagName) || el.classList.contains("highlight")) { skipped = true; break; }
    }
    if (!skipped && /\\$|\\\\\\(|\\\\\\[|\\\\begin\\{/.test(node.textContent)) {
      bad.push(node.textContent.trim().slice(0, 80));
    }
  }
  return bad;
}"""

IMAGES = """async () => Promise.all([...document.images].map(async (img) => {
  img.loading = "eager";
  try { await img.decode(); } catch (e) {}
  return {src: img.getAttribute("src"), alt: img.getAttribute("alt") || "",
          width: img.naturalWidth};
}))"""


# Every output area, table and display equation of the article whose content is wider than its
# own box or than the nearest ancestor that scrolls or clips it (a scrolled box hides part of
# its line until the reader scrolls; a clipped one hides it for good).
OVERFLOW = """() => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  document.querySelectorAll(".toggle-hidden").forEach((e) => e.classList.remove("toggle-hidden"));
  const article = document.querySelector("article") || document.body;
  const kinds = [
    ["output", ".cell_output .output, .cell_output pre"],
    ["table", "table"],
    ["equation", "div.math, mjx-container[display='true']"],
  ];
  const wide = (el) => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1;
  const container = (el) => {
    for (let p = el.parentElement; p && p !== article.parentElement; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return p;
    }
    return null;
  };
  const name = (el) => {
    const cls = [...el.classList].slice(0, 3).join(".");
    const id = el.id || (el.closest("[id]") || {}).id || "";
    return `${el.tagName.toLowerCase()}${cls ? "." + cls : ""}${id ? " near #" + id : ""}`;
  };
  const found = [], seen = new Set();
  for (const [kind, selector] of kinds) {
    for (const el of article.querySelectorAll(selector)) {
      for (const box of [el, container(el)]) {
        if (!box || seen.has(box) || !wide(box)) continue;
        seen.add(box);
        const text = (el.innerText || el.textContent || "").replace(/\\s+/g, " ").trim();
        found.push(`${kind} ${name(el)} (${box.scrollWidth} > ${box.clientWidth} px` +
                   `${box === el ? "" : " in " + name(box)}): ${[...text].slice(0, 60).join("")}`);
      }
    }
  }
  return found;
}"""

# The text a reader sees in the article: prose and outputs, not the code of the cells.
READER_TEXT = """() => {
  const article = (document.querySelector("article") || document.body).cloneNode(true);
  article.querySelectorAll(".cell_input, script, style").forEach((e) => e.remove());
  return article.textContent;
}"""
PLACEHOLDERS = re.compile(r"\bpending\b|not timed in this build", re.I)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(html):
    handler = functools.partial(_Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("MGS_BROWSER_TESTS") == "required":
            pytest.fail("MGS_BROWSER_TESTS=required but no chromium on PATH")
        pytest.skip("no chromium on PATH: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def screenshots(book_build):
    folder = book_build / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def open_page(browser, url):
    """Open ``url``; return the page and what went wrong while loading it."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    host = urlparse(url).netloc
    page.on("pageerror", lambda err: problems.append(f"script error: {err}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    page.on("request", lambda r: urlparse(r.url).netloc not in ("", host)
            and r.url.startswith("http") and problems.append(f"external: {r.url}"))  # fmt: skip
    page.goto(url, wait_until="load")
    return page, problems


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(browser, site, screenshots, name):
    page, problems = open_page(browser, f"{site}/{name}")
    has_math = page.locator(".math").count() > 0
    if has_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, "no formula was typeset"
        assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    assert page.evaluate(RAW_TEX) == [], "raw TeX left in the prose"

    images = page.evaluate(IMAGES)
    for img in images:
        assert img["width"] > 0, f"image does not load: {img['src']}"
        alt = img["alt"].strip()
        assert alt and not re.search(r"\.(png|svg|jpe?g)$", alt), f"no alt text: {img['src']}"

    text = page.inner_text("body")
    assert "Traceback (most recent call last)" not in text
    assert page.locator(".output.traceback, .output.error").count() == 0, "error output"
    for err in page.locator(".output.stderr").all_inner_texts():
        assert not re.search(r"\w*Error\b|figure check:", err), f"error on stderr: {err[:200]}"

    if name in NOTEBOOKS:
        colab = page.locator('a[href^="https://colab.research.google.com/github/"]')
        assert colab.count() >= 1, "no Colab launch button"
        href = colab.first.get_attribute("href")
        assert href.endswith(NOTEBOOKS[name]), f"the launch button opens {href}"

    page.screenshot(path=str(screenshots / (name.replace("/", "__") + ".png")), full_page=True)
    page.close()
    assert problems == []


@pytest.fixture(scope="module")
def pages(browser, site):
    """Every page, opened once at a 1280 px viewport with its math typeset: ``{name: page}``."""
    opened = {}
    for name in PAGES:
        page, _ = open_page(browser, f"{site}/{name}")
        if page.locator(".math").count() > 0:
            page.wait_for_function("() => window.MathJax && MathJax.startup && "
                                   "MathJax.startup.promise")  # fmt: skip
            page.evaluate("() => MathJax.startup.promise")
        opened[name] = page
    yield opened
    for page in opened.values():
        page.close()


def test_nothing_overflows_horizontally(pages):
    """No output area, table or display equation is wider than its box at 1280 px."""
    found = [f"{name}: {what}" for name, page in pages.items() for what in page.evaluate(OVERFLOW)]
    assert not found, f"{len(found)} cut horizontally at 1280 px:\n" + "\n".join(found)


def test_no_placeholder_reaches_the_full_edition(pages):
    """No "pending" or "not timed in this build" in the prose or the outputs of any page."""
    found = []
    for name, page in pages.items():
        text = " ".join(page.evaluate(READER_TEXT).split())
        found += [f"{name}: ...{text[max(0, m.start() - 60) : m.end() + 30]}..."
                  for m in PLACEHOLDERS.finditer(text)]  # fmt: skip
    assert not found, f"{len(found)} placeholders:\n" + "\n".join(found)


def test_search_finds_the_kernel(browser, site, screenshots):
    page, problems = open_page(browser, f"{site}/search.html?q=kernel")
    results = page.locator("#search-results li")
    results.first.wait_for(timeout=30_000)
    links = [a.get_attribute("href") for a in page.locator("#search-results li a").all()]
    assert any("measuring_mgs" in link for link in links), links
    page.screenshot(path=str(screenshots / "search.png"), full_page=True)
    assert problems == []
