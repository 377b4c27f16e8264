"""The web page in a real browser: headless Chromium opens it, types a prompt, generates, and finds playable audio
and a spectrogram. Marked `browser` (run with `make test-all`, which installs Chromium where it is missing).
ARCAUDIO_SCREENSHOT=path keeps a screenshot of the page after the generation."""

import os
import shutil
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.browser
pytest.importorskip("fastapi")
selenium = pytest.importorskip("selenium")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def server_url():
    import uvicorn

    from arcaudio.loading import load
    from arcaudio.server.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(load("default", precision="auto"), "default")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or not os.path.exists(DRIVER):
        pytest.skip("needs chromium and chromium-driver (Debian packages; `make test-all` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1300",
                 "--autoplay-policy=no-user-gesture-required",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):  # a beeping microphone
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_the_page_generates_playable_audio_with_spectrograms(server_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(server_url)
    wait.until(lambda d: "default" in d.find_element(By.ID, "model-info").text)
    assert not browser.find_element(By.ID, "token-row").is_displayed()  # no token asked of this server
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("white noise on the left")
    variations = browser.find_element(By.ID, "variations")
    variations.clear()
    variations.send_keys("2")
    browser.find_element(By.ID, "generate").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "clip(s) in"))
    clips = browser.find_elements(By.CSS_SELECTOR, "#results .clip")
    assert len(clips) == 2
    for clip in clips:  # each player has decoded audio of the asked length, and a spectrogram picture
        audio = clip.find_element(By.TAG_NAME, "audio")
        wait.until(lambda d, a=audio: d.execute_script("return arguments[0].readyState", a) >= 1)
        assert abs(browser.execute_script("return arguments[0].duration", audio) - 3.0) < 0.05
        image = clip.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 100
        assert clip.find_element(By.LINK_TEXT, "download").get_attribute("download").endswith(".wav")
    played = browser.execute_async_script(
        "const done = arguments[0]; const a = document.querySelector('#results audio');"
        "a.play().then(() => setTimeout(() => done(a.currentTime), 500)).catch(e => done(String(e)));")
    assert isinstance(played, float) and played > 0, played  # it plays
    assert "white noise on the left" in browser.find_element(By.ID, "history").text
    if os.environ.get("ARCAUDIO_SCREENSHOT"):
        browser.save_screenshot(os.environ["ARCAUDIO_SCREENSHOT"])


def test_the_page_turns_a_dropped_file_into_audio(server_url, browser, tmp_path):
    import numpy as np
    import soundfile as sf
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    t = np.arange(22050) / 22050
    sf.write(tmp_path / "voice.wav", 0.3 * np.sin(2 * np.pi * 180 * t) * (t < 0.5), 22050)
    wait = WebDriverWait(browser, 60)
    browser.get(server_url)
    wait.until(lambda d: "default" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "voice.wav"))  # what a drop or a pick does
    wait.until(ec.text_to_be_present_in_element((By.ID, "input-info"), "input: voice.wav"))
    browser.find_element(By.ID, "generate").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "clip(s) in"))
    assert "from input, strength 0.5" in browser.find_element(By.CSS_SELECTOR, "#results h2").text
    audio = browser.find_element(By.CSS_SELECTOR, "#results audio")
    wait.until(lambda d: d.execute_script("return arguments[0].readyState", audio) >= 1)
    assert abs(browser.execute_script("return arguments[0].duration", audio) - 1.0) < 0.05  # the input's length


def test_the_page_records_the_microphone_for_voice_to_audio(server_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(server_url)
    wait.until(lambda d: "default" in d.find_element(By.ID, "model-info").text)
    record = browser.find_element(By.ID, "record")
    record.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "record"), "Stop"))
    time.sleep(1.2)
    record.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "input-info"), "microphone recording"))
    seconds = float(browser.find_element(By.ID, "seconds").get_attribute("value"))
    assert 0.8 < seconds < 2.0  # the recording's length
    browser.find_element(By.ID, "generate").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "clip(s) in"))
    assert "from input" in browser.find_element(By.CSS_SELECTOR, "#results h2").text
