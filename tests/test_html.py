"""The web pages: self-contained, every formula MathML, tested in a real headless Chromium.

The browser tests use Debian's ``/usr/bin/chromium`` (or ``$CHROMIUM``) through
Playwright's Python package; they are skipped, with the reason, only when no Chromium
is installed. Screenshots go to ``$INITPROOF_SCREENSHOTS`` (a temporary folder unless
set) so they can be looked at.
"""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

import report
from report import _html

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = ("report.html", "report-zh.html", "handout.html", "handout-zh.html")
#: What TeX looks like when it leaks into the text of a page.
RAW_TEX = re.compile(r"\\[A-Za-z]+|\^\{|_\{|\$")


@pytest.fixture(scope="module")
def ev(shared_quick_evidence):
    return copy.deepcopy(shared_quick_evidence)


@pytest.fixture(scope="module")
def built(ev, tmp_path_factory):
    """The four pages written to a folder, and the formulas that failed to convert."""
    folder = tmp_path_factory.mktemp("html")
    _html.failures(clear=True)
    for lang in ("en", "zh"):
        suffix = "" if lang == "en" else f"-{lang}"
        pages = {
            "report": _html.render_report_html(ev, lang),
            "handout": _html.render_handout_html(ev, lang),
        }
        for name, text in pages.items():
            (folder / f"{name}{suffix}.html").write_text(text, encoding="utf-8")
    return folder, _html.failures(clear=True)


# ----------------------------------------------------------------- without a browser


def test_every_formula_converts(built):
    folder, failed = built
    assert failed == [], f"{len(failed)} formulas did not convert, e.g. {failed[:3]}"
    for name in PAGES:
        text = (folder / name).read_text(encoding="utf-8")
        assert 'class="math-error"' not in text
        assert text.count("<math ") > 50, name


def test_pages_are_self_contained(built):
    folder, _ = built
    for name in PAGES:
        text = (folder / name).read_text(encoding="utf-8")
        assert not re.search(r"""(?:src|href)=["'](?!#|data:)""", text), name
        assert "@import" not in text and "url(" not in text, name
        assert "<script" not in text, name
    report_page = (folder / "report.html").read_text(encoding="utf-8")
    assert report_page.count('src="data:image/png;base64,') >= 5


def _numbers(page: str) -> Counter:
    """The numbers a reader sees on a page (its text and formulas, not its images)."""
    page = re.sub(r"<head>.*?</head>|<img[^>]*>", "", page, flags=re.S)
    return Counter(re.findall(r"\d+(?:\.\d+)?", html.unescape(re.sub(r"<[^>]+>", " ", page))))


def test_both_languages_show_the_same_numbers(built):
    folder, _ = built
    for name in ("report", "handout"):
        en = _numbers((folder / f"{name}.html").read_text(encoding="utf-8"))
        zh = _numbers((folder / f"{name}-zh.html").read_text(encoding="utf-8"))
        assert sum(en.values()) > 1000
        assert en == zh, ((en - zh).most_common(5), (zh - en).most_common(5))


def test_same_evidence_same_bytes(ev, built):
    folder, _ = built
    again = _html.render_handout_html(ev, "en")
    assert again == (folder / "handout.html").read_text(encoding="utf-8")


def test_write_report_writes_the_pages(ev, built, tmp_path):
    folder, _ = built
    paths = report.write_report(
        ev, tmp_path / "handout", pdf=False, handout=True, langs=("en", "zh"), suffixes=(".html",)
    )
    pages = {p.name: p for p in paths if p.suffix == ".html"}
    assert sorted(pages) == ["handout-zh.html", "handout.html"]
    for name, path in pages.items():
        assert path.read_bytes() == (folder / name).read_bytes()


def test_failed_formula_is_recorded_and_not_leaked():
    _html.failures(clear=True)
    out = _html.mathml(r"\frac{1}{")
    failed = _html.failures(clear=True)
    assert "\\" not in out and "math-error" in out
    assert [tex for tex, _ in failed] == [r"\frac{1}{"]
    out = _html.prose(r"ok $\undefinedmacro{x}$ ok", "en")
    failed = _html.failures(clear=True)
    assert "\\undefinedmacro" not in out and len(failed) == 1, (out, failed)


def test_sympy_latex_converts_to_sound_mathml():
    samples = [
        r"\operatorname{polygamma}{\left(1,\frac{n}{2} \right)}",
        r"\log{\left(x \right)} + \sum_{i=1}^{n} x_{i}",
        r"\begin{bmatrix}u_{1} & \cdots \\ u_{2} & \cdots\end{bmatrix}_{2\times 3}",
        r"\left[\begin{matrix}1 & 0\\0 & 1\end{matrix}\right] \allowbreak \mathrm{erf}",
        r"\phantom{\text{where }} u_{2} = \sigma'\left(x\right)",
    ]
    _html.failures(clear=True)
    for tex in samples:
        out = _html.mathml(tex, display=True)
        assert out.startswith("<math") and "\\" not in out, tex
    assert _html.failures(clear=True) == []
    assert "<mi>&#x003C8;</mi>" in _html.mathml(samples[0])  # polygamma(1, .) is psi'


def test_text_is_escaped():
    out = _html.prose("a <b> & c, $x < y$ and `<code>`", "en")
    assert "<b>" not in out and "&lt;b&gt;" in out and "&amp;" in out
    assert "<code>&lt;code&gt;</code>" in out
    assert "<math" in out
    label = _html.label("E[x^2] of <script> with sympy.integrate", "en")
    assert "<script>" not in label and "<math" in label


# ----------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright  # a test dependency: never skipped

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("INITPROOF_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _open(browser, path: Path):
    """A page loaded from ``path`` with every request, console error and script error
    recorded (anything but the file itself and ``data:`` is a network use)."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    log = {"errors": [], "requests": [], "failed": []}
    page.on("console", lambda m: log["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("requestfailed", lambda r: log["failed"].append(r.url))
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "data:")) else log["requests"].append(r.url),
    )
    page.goto(path.as_uri(), wait_until="load")
    return page, log


@pytest.mark.parametrize("name", PAGES)
def test_page_in_browser(browser, built, name):
    folder, _ = built
    page, log = _open(browser, folder / name)
    try:
        assert log == {"errors": [], "requests": [], "failed": []}
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        text = page.evaluate("document.body.innerText")
        assert len(text) > 2000
        leaks = sorted(set(RAW_TEX.findall(text)))
        assert leaks == [], f"raw TeX in the text of {name}: {leaks[:10]}"
        sizes = page.evaluate(
            "Array.from(document.querySelectorAll('math'), m => {"
            " const r = m.getBoundingClientRect(); return [r.width, r.height]; })"
        )
        assert len(sizes) > 50
        empty = [k for k, (w, h) in enumerate(sizes) if not (w > 0 and h > 0)]
        assert empty == [], f"{len(empty)} of {len(sizes)} math elements have no size"
        images = page.evaluate("Array.from(document.images, i => i.complete && i.naturalWidth > 0)")
        assert images and all(images)
    finally:
        page.close()


@pytest.mark.parametrize("name", PAGES)
def test_contents_links_point_at_anchors(browser, built, name):
    folder, _ = built
    page, _ = _open(browser, folder / name)
    try:
        toc = page.evaluate(
            "Array.from(document.querySelectorAll('nav.toc a'), a => a.getAttribute('href'))"
        )
        assert len(toc) >= 6
        links = page.evaluate(
            "Array.from(document.querySelectorAll('a[href^=\"#\"]'),"
            " a => [a.getAttribute('href'), !!document.getElementById("
            "decodeURIComponent(a.getAttribute('href').slice(1)))])"
        )
        dangling = [href for href, ok in links if not ok]
        assert dangling == []
        assert set(toc) <= {href for href, _ in links}
    finally:
        page.close()


def test_report_claims_have_anchors(browser, built, ev, shots):
    folder, _ = built
    page, _ = _open(browser, folder / "report.html")
    try:
        for c in ev["claims"]:
            assert page.locator(f"section.claim[id='{c['id']}'] h3").count() == 1, c["id"]
        page.screenshot(path=str(shots / "report-first-screen.png"), full_page=False)
        claim = page.locator("section.claim").first
        assert claim.locator("math").count() > 10
        claim.scroll_into_view_if_needed()
        page.evaluate("document.querySelector('section.claim').scrollIntoView()")
        page.screenshot(path=str(shots / "report-claim.png"), full_page=False)
    finally:
        page.close()
    for shot in ("report-first-screen.png", "report-claim.png"):
        assert (shots / shot).stat().st_size > 10_000


@pytest.mark.parametrize("name", ["handout.html", "handout-zh.html"])
def test_clicking_a_blank_reveals_its_answer(browser, built, shots, name):
    folder, _ = built
    page, log = _open(browser, folder / name)
    try:
        blanks = page.locator("details.blank")
        assert blanks.count() >= 15
        for k in (0, blanks.count() - 1):
            blank = blanks.nth(k)
            answer = blank.locator(".answer")
            assert not answer.is_visible()
            blank.locator("summary").click()
            assert answer.is_visible()
            box = answer.locator("math").first.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0
        worked = page.locator("details.worked").first
        assert not worked.locator("table").first.is_visible()
        worked.locator("summary").click()
        assert worked.locator("table").first.is_visible()
        blanks.first.evaluate("b => b.closest('table').scrollIntoView()")
        stem = name.removesuffix(".html")
        page.screenshot(path=str(shots / f"{stem}-revealed.png"), full_page=False)
        assert log["errors"] == []
    finally:
        page.close()
