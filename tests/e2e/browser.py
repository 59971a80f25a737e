"""A real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by Selenium), for the dashboard.

`make test` installs both when /usr/bin/chromium is missing (`make browser`); nothing is downloaded at run time:
the driver is given by path, so Selenium Manager never looks for one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, no sandbox (root in a container), and nothing that reaches out on its own (updates, sync, QUIC probes).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")
WINDOW = (1400, 1000)


@contextmanager
def headless_chromium(window: tuple[int, int] = WINDOW) -> Iterator[object]:
    """A Selenium Chrome driver on a fresh profile, its console kept (`driver.get_log("browser")`)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise AssertionError(f"{', '.join(missing)} missing: run `make browser` (apt-get install chromium "
                             "chromium-driver), which `make test` does")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


def console_errors(driver: object) -> list[dict[str, object]]:
    """The console entries of level SEVERE (JavaScript errors, failed loads) since the last call."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]  # type: ignore[attr-defined]


def save_full_page(driver: object, path: Path) -> None:
    """A PNG of the whole page, below the window's fold too (Chrome DevTools' capture beyond the viewport)."""
    import base64

    width, height = driver.execute_script(  # type: ignore[attr-defined]
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {  # type: ignore[attr-defined]
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
