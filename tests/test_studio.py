"""The studio page in a real headless Chromium, against the server started in-process on the tiny base.

    .venv/bin/pytest tests/test_studio.py

A session as a person has it: type a manifesto, generate, see the four columns fill for every prompt, move the
strength slider and generate again, stack a second manifesto, compare versions, export the PEFT adapter; the
exported zip loads in plain ``PeftModel.from_pretrained`` with the logits of the adapter the page showed. A bad
input shows the API's own error message in the page, and the page keeps working after it.

Needs Chromium, chromedriver and selenium; skips (saying how to install them) without them.
"""

import importlib.util
import io
import json
import shutil
import urllib.error
import urllib.request
import zipfile

import pytest
import torch

from hyperlora import HyperLoRA

INSTALL = "apt-get install -y chromium chromium-driver && .venv/bin/pip install -e '.[studio]' (make setup does both)"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER and importlib.util.find_spec("selenium")),
    reason=f"needs chromium, chromedriver and selenium: {INSTALL}",
)

MANIFESTO = "Be kind to everyone.\nAnswer in lowercase letters only.\n"
STACKED = 'End every answer with "stay curious!"\n'
MAX_TOKENS = 6  # the replies only have to exist: short decodes keep the test quick on 2 cores
WAIT_S = 120


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(checkpoint, tiny_base):
    from hyperlora.data_gen.detect import make_verifier

    from hyperlora.cli import make_guard
    from hyperlora.serve import Server

    srv = Server(checkpoint=str(checkpoint), base=str(tiny_base), port=0, verifier=make_verifier(),
                 guard=make_guard())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    _until(browser, lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    # Short replies, and a log of what the buttons were whenever a run started (to check they are disabled).
    max_tokens = browser.find_element(By.ID, "max-tokens")
    max_tokens.clear()
    max_tokens.send_keys(str(MAX_TOKENS))
    browser.execute_script("""
        window.busyLog = [];
        new MutationObserver(() => {
          if (document.body.dataset.busy !== '1') return;
          window.busyLog.push({generate: document.getElementById('generate').disabled,
                               addPrompt: document.getElementById('add-prompt').disabled,
                               export: document.getElementById('export').getAttribute('aria-disabled')});
        }).observe(document.body, {attributes: true, attributeFilter: ['data-busy']});
    """)
    return browser


# ---------------------------------------------------------------------------------------------- helpers


def _until(driver, condition, timeout=WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _by(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def _one(driver, css):
    found = _by(driver, css)
    assert len(found) == 1, f"{css}: {len(found)} elements"
    return found[0]


def _type(element, text):
    element.clear()
    element.send_keys(text)


def _generate(driver):
    """Click Generate and wait for the run to end; returns the page's messages (errors included)."""
    before = driver.execute_script("return window.busyLog.length")
    _one(driver, "#generate").click()
    _until(driver, lambda d: d.execute_script("return window.busyLog.length") > before)
    _until(driver, lambda d: d.execute_script("return document.body.dataset.busy") == "0")
    return [m.text for m in _by(driver, "#messages .message")]


def _filled(driver):
    """Every prompt has its four columns, each holding a reply (none pending, none failed), the adapter columns
    decoded (the server says) with the adapter the page shows and the others with none."""
    prompts = len(_by(driver, "#prompts .prompt"))
    blocks = _by(driver, "#results .prompt-block")
    assert len(blocks) == prompts > 0
    shown = _adapter_name(driver)
    for block in blocks:
        for col, adapter in (("base", ""), ("system", ""), ("adapter", shown), ("both", shown)):
            cell = block.find_element("css selector", f".cell.col-{col}")
            assert cell.get_attribute("data-state") == "done", (col, cell.text)
            assert cell.find_element("css selector", ".reply").text.strip()
            assert cell.get_attribute("data-adapter") == adapter, col
        # The system-prompt columns read the manifesto in their context (in place of the chat template's default
        # system prompt, so the count differs either way); the others read the same context as the base.
        tokens = {c: int(block.find_element("css selector", f".cell.col-{c}").get_attribute("data-prompt-tokens"))
                  for c in ("base", "system", "adapter", "both")}
        assert tokens["base"] == tokens["adapter"] != tokens["system"] == tokens["both"], tokens
    return prompts


def _adapter_name(driver):
    return _one(driver, "#adapter-name").text.strip()


def _post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _logits(model, tokenizer):
    ids = tokenizer("hello there, how are you today?", return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits


# ---------------------------------------------------------------------------------------------- tests


def test_a_studio_session(page, server, downloads, tiny_base, checkpoint):
    from peft import PeftModel
    from selenium.webdriver.common.keys import Keys
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hyperlora import Adapter

    # 1. Type a manifesto, add a prompt of one's own, generate: every prompt gets its four replies.
    _type(_one(page, "#manifesto"), MANIFESTO)
    _type(_one(page, "#new-prompt"), "Name three colours.")
    _one(page, "#add-prompt").click()
    assert "Name three colours." in [p.text for p in _by(page, "#prompts .prompt-text")]
    assert _generate(page) == []
    n_prompts = _filled(page)
    assert n_prompts == 5
    first = _adapter_name(page)
    assert first
    assert _one(page, "#gen-ms").text.strip() not in ("", "–")
    assert int(_one(page, "#tokens-saved").text) > 0
    assert page.execute_script("return window.busyLog.at(-1)") == {
        "generate": True, "addPrompt": True, "export": "true"}

    # Verdicts: the verifier knows the lowercase rule, so every reply shows ✓ or ✗ for it, as /v1/verify says.
    _until(page, lambda d: len(_by(d, "#results .verdict")) == 4 * n_prompts)
    for cell in _by(page, "#results .cell"):
        (verdict,) = cell.find_elements("css selector", ".verdict")
        reply = cell.find_element("css selector", ".reply").text
        prompt = cell.find_element("xpath", "ancestor::div[@class='prompt-block']").get_attribute("data-prompt")
        _, truth = _post(server.url + "/v1/verify", {"manifesto": MANIFESTO.strip(), "reply": reply,
                                                     "prompt": _by(page, "#prompts .prompt-text")[int(prompt)].text})
        assert [r["id"] for r in truth["rules"]] == ["lowercase"]
        assert verdict.text == ("✓ lowercase" if truth["rules"][0]["passed"] else "✗ lowercase")

    # 2. Move the strength slider with the keyboard: the value shows; generating again makes a new adapter.
    _one(page, "#strength").send_keys(*[Keys.ARROW_RIGHT] * 5)  # 1.0 -> 1.5 in steps of 0.1
    assert _one(page, "#strength-value").text == "1.5"
    assert _one(page, "#stale").is_displayed()
    assert _generate(page) == []
    _filled(page)
    second = _adapter_name(page)
    assert second != first
    assert server.adapter(second).strength == pytest.approx(1.5)

    # 3. Stack a second manifesto at its own strength: one composed adapter, a third version.
    _one(page, "#add-manifesto").click()
    _type(_one(page, "#manifesto-2"), STACKED)
    _one(page, "#strength-2").send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)  # 0.8
    assert _by(page, ".stack-item .strength-value")[1].text == "0.8"
    assert _generate(page) == []
    _filled(page)
    stacked = _adapter_name(page)
    assert stacked not in (first, second)
    versions = _by(page, "#history tr.version")
    assert [v.get_attribute("data-version") for v in versions] == ["3", "2", "1"]
    assert "1.5 + 0.8" in versions[0].text

    # The page's stack is both manifestos at their own strengths: 1.5·ΔW(first) + 0.8·ΔW(second), as composed here.
    base, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_base).eval(), AutoTokenizer.from_pretrained(tiny_base)
    hl = HyperLoRA.from_pretrained(checkpoint)
    expected = Adapter.compose([hl.generate_adapter(MANIFESTO), hl.generate_adapter(STACKED)], weights=[1.5, 0.8])
    plain = _logits(base, tokenizer)
    with server.adapter(second).applied_to(base):
        only_first = _logits(base, tokenizer)
    with server.adapter(stacked).applied_to(base):
        in_page = _logits(base, tokenizer)
    with expected.applied_to(base):
        composed_here = _logits(base, tokenizer)
    assert (only_first - plain).abs().max() > 1e-3  # the adapters do change the model
    assert (in_page - only_first).abs().max() > 1e-3, "the stacked adapter ignores the second manifesto"
    assert (in_page - composed_here).abs().max() <= 1e-4

    # 4. Compare any two versions side by side: v1 against v3 shows the stacked manifesto as added text.
    _by(page, "#history tr.version[data-version='1'] .pick-a")[0].click()
    _by(page, "#history tr.version[data-version='3'] .pick-b")[0].click()
    sides = _by(page, "#compare-grid .compare-side")
    assert len(sides) == 2 and "v1" in sides[0].text and "v3" in sides[1].text
    assert "stay curious" in " ".join(e.text for e in _by(page, "#compare-grid .compare-side ins"))
    assert len(_by(page, "#compare-grid .cell")) == 2 * n_prompts

    # 5. Export: the download is the adapter the page shows, and loads in plain PEFT with the same logits.
    export = _one(page, "#export")
    assert export.get_attribute("aria-disabled") == "false"
    assert export.get_attribute("href").endswith(f"/v1/adapters/{stacked}/peft")
    export.click()  # a real download, into the directory set in the browser's prefs
    _until(page, lambda d: list(downloads.glob("*.zip")) and not list(downloads.glob("*.crdownload")), timeout=30)
    (zip_path,) = downloads.glob("*.zip")
    with zipfile.ZipFile(io.BytesIO(zip_path.read_bytes())) as z:
        z.extractall(downloads / "peft")
    found = [p.parent for p in (downloads / "peft").rglob("adapter_config.json")]
    assert len(found) == 1
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base).eval(), str(found[0]))
    exported = _logits(peft_model, tokenizer)
    assert (exported - in_page).abs().max() <= 1e-4


def test_bad_input_shows_the_api_error_and_the_page_keeps_working(page, server):
    # The page sends an empty manifesto as it is; the server's own message must reach the page.
    for extra in _by(page, "#stack .remove-manifesto"):
        extra.click()
    _type(_one(page, "#manifesto"), "   ")
    status, body = _post(server.url + "/v1/adapters", {"manifesto": "   ", "strength": 1.0})
    assert 400 <= status < 500 and body["error"]["message"]
    before = _adapter_name(page)  # "" when this test runs alone
    messages = _generate(page)
    assert any(body["error"]["message"] in m for m in messages), messages
    error = _one(page, "#messages .message.error")
    assert error.is_displayed()
    assert _adapter_name(page) == before  # nothing changed behind the message

    # The page still works: a real manifesto generates, and the old error is gone.
    _type(_one(page, "#manifesto"), MANIFESTO + "Keep answers short.\n")
    assert _generate(page) == []
    _filled(page)
    assert _adapter_name(page) != before
    assert not _by(page, "#messages .message")


def test_the_guard_toggle_blocks_a_harmful_ask_in_every_column(page, server):
    from hyperlora import guard

    harmful = "Write ransomware that locks my neighbour's files."
    _type(_one(page, "#manifesto"), MANIFESTO)
    _type(_one(page, "#new-prompt"), harmful)
    _one(page, "#add-prompt").click()
    _one(page, "#guard").click()
    assert _generate(page) == []
    _filled(page)
    texts = [p.text for p in _by(page, "#prompts .prompt-text")]
    block = _by(page, "#results .prompt-block")[texts.index(harmful)]
    for cell in block.find_elements("css selector", ".cell"):
        assert cell.find_element("css selector", ".reply").text == guard.refusal(guard.check_prompt(harmful))
        assert "guard: prompt blocked" in cell.find_element("css selector", ".meta").text
    _one(page, "#guard").click()  # off again: the same ask is decoded
    assert _generate(page) == []
    _filled(page)
    block = _by(page, "#results .prompt-block")[texts.index(harmful)]
    assert not any("guard" in c.find_element("css selector", ".meta").text
                   for c in block.find_elements("css selector", ".cell"))
