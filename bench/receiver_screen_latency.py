"""Gateway POST → the alarm at the wall screen's browser: latency of the server-sent event.

A real receiver process; Debian's Chromium (Playwright) logged in to the wall screen, with a
listener on the page's own event stream that stamps each ``alarm`` event with the browser's
clock. Alarms are POSTed one at a time (10–50 ms apart), each signed afresh; the latency is
browser arrival minus the moment before the POST left (both the machine's wall clock, read
by Python and by Chromium on the same host, ~1 ms resolution in the browser).

    python -m bench.receiver_screen_latency [--alarms 300]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import requests

from bench.receiver_common import (
    OFFICER,
    PASSWORD,
    alarm,
    free_port,
    percentile,
    receiver_process,
    site_secret,
    write_receiver_config,
)
from gateway.escalation.wire import signed_headers

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-background-timer-throttling"]

LISTEN = """() => {
  window.__arrivals = {};
  const es = new EventSource("/api/stream");
  es.addEventListener("alarm", (e) => {
    const a = JSON.parse(e.data);
    if (!(a.key in window.__arrivals)) window.__arrivals[a.key] = Date.now();
  });
  return new Promise((ok) => es.addEventListener("snapshot", () => ok(true)));
}"""


def measure(count: int, *, bare: bool) -> list[float]:
    """Latencies (ms) of ``count`` alarms. ``bare``: the listener runs in a same-origin page
    without the wall screen's script; otherwise beside the live screen, which draws every
    alarm (all left open, so the screen grows to ``count`` cards)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = write_receiver_config(Path(tmp), 5, port)
        with receiver_process(config, port), sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(base + "/")
            page.fill("#login-name", OFFICER)
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#screen", state="visible")
            if bare:
                page.goto(base + "/api/session")
            page.evaluate(LISTEN)
            sent = _post_all(base, count)
            page.wait_for_function(f"() => Object.keys(window.__arrivals).length >= {count}",
                                   timeout=60000)
            arrivals: dict[str, float] = page.evaluate("window.__arrivals")
            browser.close()
    return [arrivals[k] - t for k, t in sent.items()]


def _post_all(base: str, count: int) -> dict[str, float]:
    """POST ``count`` alarms from 5 sites, 10–50 ms apart; escalation id → send time (ms)."""
    sent: dict[str, float] = {}
    with requests.Session() as http:
        for n in range(count):
            site = n % 5
            request = alarm(site, n)
            body = request.to_body()
            headers = signed_headers(site_secret(site), request.escalation_id, body,
                                     int(time.time()))
            sent[request.escalation_id] = time.time() * 1000
            resp = http.post(f"{base}/v1/alarms", data=body, headers=headers, timeout=10)
            assert resp.status_code == 200, resp.text
            time.sleep(random.uniform(0.01, 0.05))
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alarms", type=int, default=300)
    args = parser.parse_args()
    for bare, label in ((False, "live wall screen (all left open)"),
                        (True, "bare EventSource, same stream")):
        ms = measure(args.alarms, bare=bare)
        print(f"POST → 'alarm' SSE event in Chromium, {label}, {len(ms)} alarms: "
              f"p50 {percentile(ms, 50):.1f}  p99 {percentile(ms, 99):.1f}  "
              f"max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()
