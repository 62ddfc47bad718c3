"""The documentation site (mkdocs.yml, docs/): it builds with --strict, fetches nothing from elsewhere,
and shows its navigation, code and search in headless Chromium opened from the file system."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cdp import Browser, find_chromium
from helpers import REPO

EXTERNAL = re.compile(r"<(?:link|script)\b[^>]*\b(?:href|src)=[\"']?(?:https?:)?//", re.IGNORECASE)


def nav_titles() -> list[str]:
    import yaml

    return [next(iter(item)) for item in yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs tools are not installed (make install: pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_page_is_built_and_fetches_nothing_from_elsewhere(site):
    pages = sorted(p.name for p in site.glob("*.html"))
    assert {"index.html", "stages.html", "models.html", "errors.html", "reference.html"} <= set(pages)
    assert [p for p in pages if EXTERNAL.search((site / p).read_text())] == []
    assert 'id="actionpipe.api.ActionModel"' in (site / "reference.html").read_text()  # the API reference
    assert (site / "schemas" / "pose.schema.json").is_file()


def text(html: str) -> str:
    """The text of an HTML fragment, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); CI installs it in .ci/run")
    return binary


def test_a_page_shows_the_navigation_and_code_in_chromium(site, tmp_path):
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (site / "stages.html").as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    # The primary navigation (the left sidebar, up to the table of contents on the right): every page.
    nav = re.search(r'<nav class="md-nav md-nav--primary".*?<div class="md-sidebar md-sidebar--secondary"', dom,
                    re.DOTALL)
    assert nav, dom[:2000]
    links = [text(link) for link in re.findall(r'<(?:a|label) [^>]*class="md-nav__link[^"]*"[^>]*>(.*?)</(?:a|label)>',
                                               nav.group(0), re.DOTALL)]
    assert [title for title in nav_titles() if title not in links] == [], links
    code = [text(block) for block in re.findall(r"<pre[^>]*>(?:(?!</pre>).)*?<code[^>]*>(.*?)</code>", dom, re.DOTALL)]
    assert any("$ actionpipe extract samples/demo.mp4 -o /tmp/f --fps 10" in block for block in code), code[:3]


def test_search_works_offline(site, tmp_path):
    browser = Browser(_chromium(), tmp_path / "profile")
    try:
        browser.open((site / "index.html").as_uri())
        found = browser.evaluate("""new Promise(function (done) {
          var toggle = document.getElementById("__search");   // opening search loads the index
          toggle.checked = true; toggle.dispatchEvent(new Event("change"));
          var input = document.querySelector("input.md-search__input"), tries = 0;
          (function ask() {
            input.value = "raylet"; input.dispatchEvent(new Event("input", {bubbles: true}));
            var items = document.querySelectorAll(".md-search-result__item");
            if (items.length || ++tries > 100) return done(Array.prototype.map.call(items, function (i) {
              return i.querySelector("a").getAttribute("href"); }));
            setTimeout(ask, 100);
          })();
        })""")
        assert found and all(href.split("#")[0] == (site / "ray.html").as_uri() for href in found), found
        assert browser.errors() == []
    finally:
        browser.close()
