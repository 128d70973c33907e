"""The console in a real headless Chromium (Selenium + chromedriver), run by tests/console_browser.rs.

Checks, against a running Loom whose admin port needs an admin key:
1. an unauthenticated visitor sees the sign-in form and no data, and a wrong key is refused;
2. after signing in: the config's providers, and an empty usage chart;
3. a request sent through Loom's front door appears live (next refresh) with its cost;
4. a virtual key is created (its plaintext shown once) and revoked from the page;
5. signing out hides the console and forgets the created key;
6. the browser logged no console errors at any point.
A screenshot of the signed-in console is written to --screenshot.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from loom_checks import CheckFailed, ensure


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="Loom's front door")
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--api-key", required=True, help="a virtual key for the front door")
    parser.add_argument("--providers", required=True, help="comma-separated provider names")
    parser.add_argument("--model", required=True)
    parser.add_argument("--cost", required=True, help="the cost the page must show for the request")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--chromedriver", required=True)
    parser.add_argument("--time-limit", type=float, default=90)
    return parser.parse_args()


def start_browser(args, profile):
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1280,1500",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A given driver path: Selenium Manager never goes looking on the network.
    return webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def send_request(args):
    body = json.dumps({"model": args.model, "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    request = urllib.request.Request(
        f"{args.base_url}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {args.api_key}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=20) as response:
        ensure(response.status == 200, f"the front door answered {response.status}")


# The page redraws its tables on every refresh: read them in one script, not element by
# element (an element found before a redraw is stale after it).
def texts(driver, selector):
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((node) => node.textContent.trim())", selector
    )


def attributes(driver, selector, name):
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((node) => node.getAttribute(arguments[1]))",
        selector,
        name,
    )


def text_of(driver, selector):
    found = texts(driver, selector)
    return found[0] if found else None


def waiting(driver, seconds=20):
    return WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException])


def browse(driver, args):
    wait = waiting(driver)
    checks = []

    driver.get(f"{args.admin_url}/")
    wait.until(lambda d: d.find_element(By.ID, "sign-in").is_displayed())
    ensure(not driver.find_element(By.ID, "console").is_displayed(), "the console shows before sign-in")
    page_text = driver.find_element(By.TAG_NAME, "body").text
    for provider in args.providers.split(","):
        ensure(provider not in page_text, f"provider {provider} shown to a visitor who has not signed in")
    checks.append("a visitor who has not signed in sees the sign-in form and no data")

    driver.find_element(By.ID, "admin-key").send_keys("not-the-admin-key")
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "sign-in-error").is_displayed())
    ensure(driver.find_element(By.ID, "sign-in-error").text == "That key was refused.", "a wrong key is not refused")
    checks.append("a wrong admin key is refused")

    driver.find_element(By.ID, "admin-key").send_keys(args.admin_key)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true")
    shown = attributes(driver, "#providers tbody tr", "data-provider")
    ensure(shown == args.providers.split(","), f"providers shown: {shown}")
    ensure(texts(driver, "#usage-groups tbody tr") == [], "usage before any request")
    ensure(len(texts(driver, "#usage-chart svg")) == 1, "no usage chart")
    checks.append(f"signed in: the providers {shown} and an empty usage chart")

    send_request(args)
    row_selector = f'#usage-groups tbody tr[data-group="{args.model}"]'
    try:
        waiting(driver, 30).until(lambda d: text_of(d, f"{row_selector} td.cost"))
    except TimeoutException:
        raise CheckFailed(f"the request never appeared; usage rows: {texts(driver, '#usage-groups tbody tr')}")
    cost = text_of(driver, f"{row_selector} td.cost")
    ensure(cost == args.cost, f"cost shown {cost!r}, expected {args.cost!r}")
    requests_tile = text_of(driver, '[data-tile="requests"] .tile-value')
    ensure(requests_tile == "1", f"requests tile shows {requests_tile!r}")
    cost_tile = text_of(driver, '[data-tile="cost"] .tile-value')
    ensure(cost_tile == args.cost, f"cost tile shows {cost_tile!r}")
    bars = texts(driver, "#usage-chart svg rect title")
    ensure(any(bar.startswith(f"{args.model} ") for bar in bars), f"the request drew no bar: {bars}")
    checks.append(f"a request sent through Loom appeared live: {args.model} at {cost}")

    driver.find_element(By.ID, "new-key-name").send_keys("console test")
    driver.find_element(By.ID, "new-key-team").send_keys("web")
    driver.find_element(By.CSS_SELECTOR, "#create-key-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "created-key").is_displayed())
    key_id = driver.find_element(By.ID, "created-key-id").text
    plaintext = driver.find_element(By.ID, "created-key-value").text
    ensure(key_id.startswith("vk-") and len(plaintext) >= 20, f"created key {key_id!r}")
    key_row = f'#keys tbody tr[data-key="{key_id}"]'
    wait.until(lambda d: texts(d, key_row))
    ensure(all(plaintext not in row for row in texts(driver, "#keys tbody tr")), "the plaintext key is in the keys table")
    checks.append(f"key {key_id} created, its plaintext shown once")

    # Taken before the revoke's confirmation dialog, which would block the capture.
    driver.save_screenshot(args.screenshot)

    # Found and clicked in one try, again if a refresh redrew the row in between.
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"{key_row} button.danger").click() or True)
    wait.until(lambda d: d.switch_to.alert)
    driver.switch_to.alert.accept()
    wait.until(lambda d: "revoked" in (text_of(d, key_row) or ""))
    checks.append(f"key {key_id} revoked")

    driver.find_element(By.ID, "sign-out").click()
    wait.until(lambda d: d.find_element(By.ID, "sign-in").is_displayed())
    ensure(plaintext not in driver.page_source, "the created key is still in the page after sign-out")
    ensure(not driver.find_element(By.ID, "console").is_displayed(), "the console shows after sign-out")
    checks.append("signing out hides the console and forgets the created key")

    errors = console_errors(driver)
    ensure(errors == [], f"console errors: {errors}")
    checks.append("no console errors")
    return checks


def main():
    args = parse_args()
    deadline = time.monotonic() + args.time_limit
    profile = tempfile.mkdtemp(prefix="loom-console-chromium-")
    driver = start_browser(args, profile)
    driver.set_page_load_timeout(max(deadline - time.monotonic(), 1))
    try:
        checks = browse(driver, args)
    except (CheckFailed, TimeoutException) as failure:
        try:
            driver.save_screenshot(args.screenshot)
        finally:
            print(f"FAILED: {failure!r}", file=sys.stderr)
            print(f"page status: {driver.find_element(By.ID, 'status').text!r}", file=sys.stderr)
            print(f"browser log: {driver.get_log('browser')}", file=sys.stderr)
        return 1
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    for check in checks:
        print(f"ok: {check}")
    print(f"all {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
