"""The impact page as a person sees it: rendered by headless Chromium.

Chromium: :mod:`tests.fixtures.browser` (skips with the reason where there is none).
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from tests.fixtures.browser import chromium, needs_chromium
from tests.training.test_impact import SPLIT, _world
from training.reports.impact import impact_report
from training.reports.impact_html import render_html

pytestmark = [pytest.mark.slow, needs_chromium]

# Runs after layout: the size of every plot, and the headline text as rendered.
_LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  const size = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height, r.top]; };
  const head = document.getElementById("headlines");
  const items = head ? [...head.querySelectorAll("li")] : [];
  const out = {
    plots: [...document.querySelectorAll("main svg, main img")].map(size),
    headlines: head ? head.innerText : "",
    headline_box: head ? size(head) : null,
    headline_font_px: items.length ? parseFloat(getComputedStyle(items[0]).fontSize) : 0,
    viewport_height: window.innerHeight,
  };
  const pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(impact_report(_world(), split_at=SPLIT))


def test_plots_and_headline_figures_are_visible(page, tmp_path):
    path = tmp_path / "impact.html"
    path.write_text(page.replace("</body>", _LAYOUT_PROBE + "</body>"), encoding="utf-8")
    dom = chromium(
        tmp_path,
        "--window-size=1280,900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        path.as_uri(),
    ).stdout
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, flags=re.S)
    assert found, "the layout probe did not run"
    layout = json.loads(html.unescape(found.group(1)))
    assert len(layout["plots"]) == 3  # funnel, waterfall, monthly trends
    for width, height, _ in layout["plots"]:
        assert width > 300 and height > 150
    for figure in ("Paid on time: 16.7%", "WIK €115", "250.0 per 1,000", "1 kept of 2 ended"):
        assert figure in layout["headlines"]
    width, height, top = layout["headline_box"]
    assert width > 300 and height > 100 and top < layout["viewport_height"]  # first screen
    assert layout["headline_font_px"] >= 14


def test_screenshot_is_not_blank(page, tmp_path):
    path, shot = tmp_path / "impact.html", tmp_path / "impact.png"
    path.write_text(page, encoding="utf-8")
    chromium(tmp_path, "--window-size=1100,1600", f"--screenshot={shot}", path.as_uri())
    from matplotlib.image import imread

    pixels = np.asarray(imread(shot))[..., :3]
    assert pixels.shape[:2] == (1600, 1100)
    ink = (pixels < 0.9).any(axis=2)
    assert ink.mean() > 0.03  # text, bars and axes: not an empty page
    # the plots' colours are there, not only black text on white
    assert (np.abs(pixels[..., 0] - pixels[..., 2]) > 0.2).mean() > 0.002
