"""Accessibility of the wall, PIN and installer pages, checked by axe-core (injected into
Debian's headless Chromium) at 800x480 and 1280x800, dark and light, on the site `make demo`
shows (`hearth demo`: the day before lived, so the charts and money are full); plus the
layout rules axe cannot judge: touch targets of 44 px, a stale banner and a toast that move
nothing, the charts' values on touch. Screenshots go to out/screenshots/a11y-*.png.

axe-core comes from npm (tests/hmi/a11y, `make install`); it is never served by the Pi.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hmi_browser_kit import browser_available, make_driver, shot, viewport, wait_until
from hmi_testkit import PASSWORD, PIN

from hil.demo import LIBFAKETIME
from hil.rig.broker import MOSQUITTO, free_port

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "tests" / "hmi" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"

# One worker, in file order: the tests share one demo and one Chromium (module fixtures),
# and test_pin_pad_and_banner needs the PIN that the installer test sets. Spread over
# several xdist workers, the PIN test ran on a demo without a PIN and timed out.
pytestmark = [
    pytest.mark.slow(30), pytest.mark.xdist_group("hmi-a11y"),
    pytest.mark.skipif(browser_available() is not None, reason=browser_available() or ""),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (make install: "
                                                "npm ci --prefix tests/hmi/a11y)"),
    pytest.mark.skipif(not Path(MOSQUITTO).exists() or not LIBFAKETIME.exists(),
                       reason="hearth demo needs Debian's mosquitto and faketime"),
]

SIZES = ((800, 480), (1280, 800))


class Demo:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hil.demo", "--out", str(out), "--hmi-port", str(self.port),
             "--seconds", "900"], cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.log = out / "hearth-run.log"
        wait_until(lambda: self.proc.poll() is not None or (
            self.log.exists() and "HMI on http" in self.log.read_text(errors="replace")),
            120, "hearth demo to serve its HMI")
        assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]

    def setup_code(self) -> str:
        m = re.search(r"One-time setup code: (\S+)", self.log.read_text(errors="replace"))
        assert m, "no setup code in hearth run's log"
        return m.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    d = Demo(tmp_path_factory.mktemp("a11y") / "demo")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    drv = make_driver()
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(300)  # axe on the whole installer form, on a busy machine
    try:
        yield drv
    finally:
        drv.quit()


def axe(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text())
    got = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: "
        "'critical', help: String(e), nodes: []}]));")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "where": [n.get("target") for n in v["nodes"]][:5]}
            for v in got if v["impact"] in ("serious", "critical")]


def _live(driver: Any) -> None:
    wait_until(lambda: driver.execute_script(
        "return !!(window.hearth && window.hearth.state && window.hearth.state.available)"),
        60, "the page to go live")


def _theme(driver: Any, theme: str) -> None:
    driver.execute_script(f"localStorage.setItem('hearth-theme', '{theme}')")
    driver.refresh()
    _live(driver)


def _small_targets(driver: Any) -> list[str]:
    return list(driver.execute_script("""return [...document.querySelectorAll(
          'button, a[href], input, select, summary, [role=button]')]
        .filter(e => e.offsetParent && getComputedStyle(e).visibility !== 'hidden')
        .filter(e => { const r = e.getBoundingClientRect();
                       return r.width > 0 && (r.height < 44 || r.width < 44); })
        .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}:` +
                  `${(e.textContent || e.getAttribute('aria-label') || '').trim().slice(0, 20)}` +
                  ` ${Math.round(e.getBoundingClientRect().width)}x` +
                  `${Math.round(e.getBoundingClientRect().height)}`)"""))


def test_wall_page_has_no_serious_violation_and_its_charts_are_full(demo: Demo,
                                                                      driver: Any) -> None:
    problems: dict[str, Any] = {}
    driver.get(demo.url + "/")
    _live(driver)
    for theme in ("dark", "light"):
        _theme(driver, theme)
        for w, h in SIZES:
            viewport(driver, w, h)
            tabs = ("now", "miners", "money", "chart") if w < 1100 else ("now",)
            for tab in tabs:
                if w < 1100:
                    driver.find_element("css selector", f".tabs button[data-tab={tab}]").click()
                if tab in ("now", "chart") or w >= 1100:
                    wait_until(lambda: len(driver.execute_script(
                        "return window.hearth.points")) > 1000, 60, "yesterday on the chart")
                name = f"a11y-wall-{w}x{h}-{theme}-{tab}"
                shot(driver, name)
                if v := axe(driver):
                    problems[name] = v
                if small := _small_targets(driver):
                    problems[name + "-targets"] = small
    assert problems == {}


def test_charts_show_the_month_and_their_values_on_touch(demo: Demo, driver: Any) -> None:
    viewport(driver, 1280, 800)
    driver.get(demo.url + "/")
    _theme(driver, "dark")
    chart = driver.find_element("id", "chart")
    chart.click()  # a touch in the middle: the values at that time
    text = driver.find_element("id", "chart-readout").text
    assert re.search(r"Solar .* · House .* · Miners", text), text
    for which, words in (("money", r"Bitcoin .* · Heat .* · Power .* · Total"),
                         ("solar", r"Taken by the miners [\d.]+ kWh · Sent to the grid")):
        driver.find_element("css selector", f"[data-chart={which}]").click()
        wait_until(lambda: driver.find_elements("css selector", "#chart rect"), 30,
                   f"the {which} bars")
        bars = driver.find_elements("css selector", "#chart rect")
        # the lived day before and today so far: two days with bars
        assert len(bars) >= 2
        last = bars[-1]
        driver.execute_script("""const r = arguments[0].getBoundingClientRect();
            const ev = new PointerEvent('pointerdown', {clientX: r.x + r.width / 2,
                                        clientY: r.y + 2, bubbles: true});
            document.getElementById('chart').dispatchEvent(ev);""", last)
        text = driver.find_element("id", "chart-readout").text
        assert re.search(words, text), text
        assert text.startswith("Today"), text
        shot(driver, f"a11y-chart-{which}-1280x800")
        assert (v := axe(driver)) == [], v


def test_installer_pages_have_no_serious_violation(demo: Demo, driver: Any) -> None:
    problems: dict[str, Any] = {}
    viewport(driver, 1280, 800)
    driver.get(demo.url + "/installer")
    wait_until(lambda: driver.find_element("id", "setup").is_displayed(), 30, "the setup form")
    for w, h in SIZES:
        viewport(driver, w, h)
        shot(driver, f"a11y-installer-setup-{w}x{h}")
        if v := axe(driver):
            problems[f"setup-{w}x{h}"] = v
    driver.find_element("id", "setup-code").send_keys(demo.setup_code())
    driver.find_element("id", "setup-pw").send_keys(PASSWORD)
    driver.find_element("id", "setup-pw2").send_keys(PASSWORD)
    driver.find_element("css selector", "#setup-form button[type=submit]").click()
    wait_until(lambda: driver.find_element("id", "tools").is_displayed(), 30, "the tools")
    wait_until(lambda: driver.find_elements("id", "f-tank_max_c"), 30, "the config form")
    driver.find_element("id", "pin-new").send_keys(PIN)
    driver.find_element("css selector", "#pin-form button[type=submit]").click()
    # every section open, so axe sees every field and checkbox
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    for w, h in SIZES:
        viewport(driver, w, h)
        driver.execute_script("window.scrollTo(0, 0)")
        shot(driver, f"a11y-installer-tools-{w}x{h}")
        if v := axe(driver):
            problems[f"tools-{w}x{h}"] = v
        if small := _small_targets(driver):
            problems[f"tools-{w}x{h}-targets"] = small
    assert not driver.find_elements("css selector", "summary input, summary button")
    assert problems == {}


def test_pin_pad_and_banner(demo: Demo, driver: Any) -> None:
    """After the installer test (which sets the PIN): a resident's tap brings the PIN pad."""
    for w, h in SIZES:
        viewport(driver, w, h)
        driver.get(demo.url + "/")
        driver.delete_all_cookies()
        driver.refresh()
        _live(driver)
        before = driver.execute_script(
            "return document.querySelector('main.pages').getBoundingClientRect().top")
        # No news from the controller (the feed closed, the last message a minute old):
        # the page's own watchdog shows the stale banner over the status line, and
        # nothing below it moves.
        driver.execute_script("""const v = window.hearth; v.es.close();
            v.connected = true; v.lastMsg = Date.now() - 60000;""")
        wait_until(lambda: driver.find_element("id", "banner").is_displayed(), 10,
                   "the stale banner")
        assert re.search(r"sent nothing for \d+ s\b", driver.find_element("id", "banner").text)
        after = driver.execute_script(
            "return document.querySelector('main.pages').getBoundingClientRect().top")
        assert after == before
        shot(driver, f"a11y-banner-{w}x{h}")
        assert (v := axe(driver)) == [], (w, h, v)
        driver.refresh()
        _live(driver)
        driver.find_element("css selector", ".mode[data-mode=heating]").click()
        wait_until(lambda: driver.find_element("id", "pin").is_displayed(), 15, "the PIN pad")
        shot(driver, f"a11y-pin-{w}x{h}")
        assert (v := axe(driver)) == [], (w, h, v)
        assert _small_targets(driver) == [], (w, h)
        driver.find_element("id", "pin-cancel").click()
