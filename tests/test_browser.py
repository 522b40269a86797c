"""Notebook 03 in JupyterLab, in a real browser: Playwright drives the Debian `chromium` (no browser download).

The fixture trains a small Director run, writes a parameterised copy of 03 pointing at it into a tmp folder (the
repository's notebook is never opened), and starts JupyterLab there with the workspace's own settings (lab/). The
test runs all cells, then drives the goal browser and the goal-space explorer as a user would. On failure it saves
a screenshot under outputs/browser/; on success, the explorer's screenshot (outputs/browser/goal_explorer.png, the
README's docs/goal_explorer.png).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hrl_core import rundir, series

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "outputs" / "browser"
DREAM_STEPS = 8
PARAMETERS = {"task": "walker_speed", "seed": 0, "trace_steps": 60, "columns": 4, "dream_steps": DREAM_STEPS}

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                 reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def notebook_copy(tmp_path_factory):
    """A trained Director run and a copy of 03 whose parameters point at it."""
    import papermill

    from hrl_core.train import Schedule, train

    tmp = tmp_path_factory.mktemp("lab")
    runs = tmp / "runs"
    train(rundir.run_path(runs, "walker_speed", "director", 0),
          rundir.RunSpec.create("walker_speed", agent="director", preset="tiny", env_options={"time_limit": 2.0}),
          Schedule(200), progress=False)
    copy = tmp / "03_goal_decoding.ipynb"
    papermill.execute_notebook(str(series.NOTEBOOK_DIR / "03_goal_decoding.ipynb"), str(copy), prepare_only=True,
                               parameters={**PARAMETERS, "out": str(tmp / "out"), "runs": str(runs)},
                               kernel_name="python3", progress_bar=False)
    return copy


@pytest.fixture(scope="module")
def lab(notebook_copy):
    """JupyterLab on the copy's folder with the workspace's settings; yields its base URL and token."""
    port, token, folder = free_port(), "hrl-browser-test", notebook_copy.parent
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--config={ROOT / 'lab' / 'jupyter_lab_config.py'}",
           "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={folder}", f"--LabApp.user_settings_dir={folder / '.lab' / 'user-settings'}",
           f"--LabApp.workspaces_dir={folder / '.lab' / 'workspaces'}"]
    log = open(folder / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "MUJOCO_GL": "egl"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/api/status?token={token}", proc)
        yield base, token
    finally:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of this server's session that is still running
        except ProcessLookupError:
            pass
        log.close()


def element_png(page, selector: str) -> bytes:
    """What the browser shows of one element, as PNG bytes: compares what a user sees, not attribute strings."""
    locator = page.locator(selector).first
    locator.scroll_into_view_if_needed()
    return locator.screenshot()


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(0.25)


def run_all_cells(page, timeout_s: float = 240.0) -> None:
    # Run before the kernel is connected, and Lab asks which kernel to start instead of running.
    page.locator(".jp-StatusBar-Item", has_text="| Idle").wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # The last cell shows the metrics dict once every cell above it has run.
    page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-OutputArea-output", has_text="distinct_goal_codes") \
        .wait_for(timeout=timeout_s * 1000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                          has_text="Traceback")
    assert errors.count() == 0, errors.first.inner_text()


def drive_browser(page) -> None:
    """Moving the time slider changes the observation, the decoded goal and the text."""
    before = {name: element_png(page, f"img.hrl-browser-{name}") for name in ("observation", "goal")}
    info = page.locator(".hrl-browser-info")
    assert "step 0 of" in info.inner_text()
    handle = page.locator(".hrl-browser-time .noUi-handle")
    handle.focus()
    for _ in range(9):  # to step 9: past two manager decisions (K = 4), so the held goal has changed
        handle.press("ArrowRight")
    wait_until(lambda: "step 9 of" in info.inner_text(), "the browser's text did not reach step 9")
    for name, png in before.items():
        wait_until(lambda: element_png(page, f"img.hrl-browser-{name}") != png, f"the browser's {name} did not change")


def drive_explorer(page) -> None:
    """Changing one slot changes the decoded goal; "dream" shows a strip of imagined frames with goal rewards."""
    goal = element_png(page, "img.hrl-explorer-goal")
    slot = page.locator(".hrl-explorer-slot select").first
    current = slot.input_value()
    slot.select_option(next(v for v in slot.locator("option").all_inner_texts() if v != current))
    wait_until(lambda: element_png(page, "img.hrl-explorer-goal") != goal, "the explorer's decoded goal did not change")
    assert page.locator(".hrl-explorer-strip img").count() == 0
    page.locator("button.hrl-explorer-dream").click()
    frames = page.locator(".hrl-explorer-strip img")
    frames.nth(DREAM_STEPS - 1).wait_for(timeout=120_000)  # the first dream compiles
    assert frames.count() == DREAM_STEPS
    assert page.locator(".hrl-explorer-strip figcaption").first.inner_text().startswith("+1: ")
    assert f"dreamed {DREAM_STEPS} steps from episode 0, step 9" in page.locator(".hrl-explorer-info").inner_text()


def test_goal_browser_and_explorer_in_jupyterlab(lab, notebook_copy):
    base, token = lab
    repository_notebook = (series.NOTEBOOK_DIR / "03_goal_decoding.ipynb").read_bytes()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        try:
            page.goto(f"{base}/lab/tree/{notebook_copy.name}?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
            run_all_cells(page)
            drive_browser(page)
            drive_explorer(page)
            assert page.get_by_text("Would you like to get notified").count() == 0  # lab/settings: no news pop-up
            view = page.locator(".jp-OutputArea-output").filter(has=page.locator(".hrl-goal-explorer")).first
            view.scroll_into_view_if_needed()
            view.screenshot(path=str(SHOTS / "goal_explorer.png"))  # the browser and the explorer below it
        except Exception:
            page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert (series.NOTEBOOK_DIR / "03_goal_decoding.ipynb").read_bytes() == repository_notebook
