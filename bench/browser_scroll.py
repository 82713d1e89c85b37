"""Scrolling a 1,000-message chat in headless Chromium: frames per second and DOM size.

    ./setup_venvs.sh   # builds frontend/dist
    PYTHONPATH=backend .venv/bin/python bench/browser_scroll.py [--messages 1000] [--runs 3]

The app runs in-process on an ephemeral port with the embedded store; the chat is written
straight into the store; the page scrolls the message list by a fixed step on every
animation frame (a steady fling, top to bottom and back) and samples requestAnimationFrame
timestamps, so list re-rendering on each scroll shows up as lost frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402
from tests.e2e.conftest import DIST_INDEX, PASSWORD  # noqa: E402
from tests.e2e.seed import SCROLL_FPS_JS, seed_long_chat, user_by_email  # noqa: E402
from tests.support.app_server import make_settings, start_app  # noqa: E402
from tests.support.plugin import CHROMIUM_ARGS  # noqa: E402


async def measure(messages: int, runs: int, step: int, seconds: float) -> dict[str, Any]:
    if not DIST_INDEX.is_file():
        raise SystemExit("frontend/dist is missing: run ./setup_venvs.sh first")
    chromium = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory() as tmp:
        app = await start_app(make_settings(Path(tmp)))
        try:
            email = "bench@example.com"
            await app.services.auth.register(email, PASSWORD, None)
            user = await user_by_email(app.services, email)
            chat, _ = await seed_long_chat(app.services, user, messages)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await page.goto(app.url + "/")
                status = await page.evaluate(
                    """async ([email, password]) => (await fetch('/api/auth/login', {method: 'POST',
                         headers: {'Content-Type': 'application/json'},
                         body: JSON.stringify({email, password})})).status""",
                    [email, PASSWORD],
                )
                assert status == 200, status
                await page.goto(f"{app.url}/c/{chat.id}")
                await page.wait_for_selector("article.message")
                at_open = await page.evaluate(
                    "document.querySelector('.scroller').getElementsByTagName('*').length"
                )
                options = {"step": step, "seconds": seconds}
                results = [await page.evaluate(SCROLL_FPS_JS, options) for _ in range(runs)]
                version = browser.version
                await browser.close()
        finally:
            await app.stop()
    return {
        "chromium": version,
        "messages": messages,
        "step_px_per_frame": step,
        "elements_in_list_at_open": at_open,
        "fps_median": statistics.median(r["fps"] for r in results),
        "runs": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=int, default=120, help="pixels scrolled per frame")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each run")
    args = parser.parse_args()
    report = asyncio.run(measure(args.messages, args.runs, args.step, args.seconds))
    print(json.dumps(report, indent=2))
    print()
    print("| run | fps | p50 frame ms | p95 frame ms | max frame ms | frames > 50 ms | elements in list |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(report["runs"], 1):
        print(
            f"| {i} | {r['fps']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} "
            f"| {r['long_frames']} | {r['elements_in_list']} |"
        )


if __name__ == "__main__":
    main()
