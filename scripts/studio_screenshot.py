"""A real studio session in headless Chromium, saved as docs/studio.png (the README's picture of the page).

    .venv/bin/python scripts/studio_screenshot.py [--out docs/studio.png] [--max-tokens 48] [--width 1400]

Starts the server in-process on a free port with the default base and the shipped checkpoint, then drives the page
as a person would: the example manifesto (examples/manifesto.txt) over the default prompts, Generate; a second,
stacked alignment prompt, Generate again, so the history holds two versions compared side by side. The capture is
the whole page at the given width. Needs chromium, chromedriver and selenium (`make setup` installs them as root);
takes the CPU for a minute or two on 2 cores.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACKED = "Be brief: two sentences at most, and be honest when you do not know something."


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "studio.png")
    ap.add_argument("--manifesto", type=Path, default=ROOT / "examples" / "manifesto.txt")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--max-height", type=int, default=4000)
    args = ap.parse_args(argv)

    chromium, chromedriver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        sys.exit("needs chromium and chromedriver: apt-get install -y chromium chromium-driver (make setup does it)")
    from hyperlora.data_gen.detect import make_verifier
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from hyperlora.serve import Server

    t0 = time.perf_counter()
    server = Server(port=0, verifier=make_verifier())  # as `hyperlora studio` starts it
    port = server.start()
    print(f"server on :{port} ({time.perf_counter() - t0:.1f} s)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                f"--window-size={args.width},1000", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        wait = WebDriverWait(driver, 600, poll_frequency=0.2)
        driver.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        find = lambda css: driver.find_element(By.CSS_SELECTOR, css)

        def generate(label):
            t = time.perf_counter()
            find("#generate").click()
            wait.until(lambda d: d.execute_script("return document.body.dataset.busy") == "1")
            wait.until(lambda d: d.execute_script("return document.body.dataset.busy") == "0")
            errors = [m.text for m in driver.find_elements(By.CSS_SELECTOR, "#messages .message")]
            if errors:
                raise SystemExit(f"{label}: the page shows {errors}")
            print(f"{label}: {time.perf_counter() - t:.1f} s, adapter {find('#adapter-name').text}")

        find("#max-tokens").clear()
        find("#max-tokens").send_keys(str(args.max_tokens))
        find("#manifesto").send_keys(args.manifesto.read_text(encoding="utf-8").strip())
        generate("v1 (example manifesto)")
        find("#add-manifesto").click()
        find("#manifesto-2").send_keys(STACKED)
        generate("v2 (+ a stacked alignment prompt)")

        # The whole page: a viewport as tall as the document (the window's own size would count its frame).
        driver.execute_script("window.scrollTo(0, 0)")
        height = min(args.max_height, driver.execute_script("return document.documentElement.scrollHeight"))
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": args.width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(0.5)  # let the layout settle at the new size
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out} ({args.width}x{height})")
    finally:
        driver.quit()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
