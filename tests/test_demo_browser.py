"""The demo notebook in a real browser: JupyterLab on localhost (free port, token, bounded time, stopped at the end),
headless Chromium (Debian's package, driven by Playwright through `executable_path`; never a browser download).
Runs all cells, checks that the widgets and the plotly figure are in the DOM, types a new query, clicks Run, checks
that the figure changed, and saves a screenshot (to $UNLOC_DEMO_SCREENSHOT when set, e.g. images/demo_browser.png).
Skipped, saying why, only where Chromium or Playwright is missing."""
import json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("UNLOC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NEW_QUERY = "a yellow circle moves to the right"  # an event of the sample video the app opens with


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def lab(tmp_path):
    "JupyterLab serving a copy of the demo notebook; its kernels see this checkout's unloc_nb (PYTHONPATH)."
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (Debian package 'chromium'; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (a dev requirement)")
    root = tmp_path / "nbs"
    root.mkdir()
    shutil.copy(REPO / "nbs" / "15_demo.ipynb", root)
    if (REPO / "images").is_dir(): shutil.copytree(REPO / "images", tmp_path / "images")  # the notebook's ../images/
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline, as for a user
    env.update(PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"), HF_HUB_OFFLINE="1")
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []  # a background job: leave the CPU to others
    root_flag = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # CI containers run as root
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [*nice, sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None", *root_flag],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                api(url, token, "/api/status")
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(1)
        yield url, token
    finally:
        try:
            for kernel in api(url, token, "/api/kernels") or []:
                api(url, token, f"/api/kernels/{kernel['id']}", "DELETE")
        except OSError: pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try: server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


def test_demo_notebook_in_chromium(lab, tmp_path):
    from playwright.sync_api import sync_playwright, TimeoutError as PlaywrightTimeout
    url, token = lab
    shot = Path(os.environ.get("UNLOC_DEMO_SCREENSHOT") or tmp_path / "demo_browser.png")
    started = time.time()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 1700})  # the whole app fits
        page = context.pages[0] if context.pages else context.new_page()
        try:
            page.goto(f"{url}/lab/tree/15_demo.ipynb?token={token}", timeout=60_000)
            page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
            dialog = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")  # 'Select Kernel': the default
            try: dialog.first.click(timeout=15_000)
            except PlaywrightTimeout: pass
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=60_000)
            news = page.locator(".jp-toast-button", has_text="No")  # 'get notified about Jupyter news?': no
            if news.count(): news.first.click()
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
            done = page.locator(".jp-OutputArea-output", has_text="demo notebook: done")  # the last cell's output
            done.first.wait_for(timeout=180_000)
            app = page.locator(".unloc-demo").first
            app.scroll_into_view_if_needed()
            figure = app.locator(".js-plotly-plot")
            figure.first.wait_for(timeout=30_000)
            assert figure.count() == 1
            assert app.locator(".unloc-run").count() == 1 and app.locator(".unloc-query input").count() == 1
            assert app.locator(".widget-slider").count() >= 2 and app.locator(".unloc-segments tr").count() >= 2
            title = figure.locator(".gtitle").first
            before = title.text_content()
            assert NEW_QUERY not in before and "syn_11.mp4" in before, before
            assert figure.locator("g.trace.bars").count() >= 1  # segment bars
            app.locator(".unloc-query input").fill(NEW_QUERY)
            app.locator(".unloc-run").click()
            figure.locator(".gtitle", has_text=NEW_QUERY).wait_for(timeout=60_000)
            assert title.text_content() != before
            assert app.locator(".unloc-segments td", has_text=NEW_QUERY).count() >= 1  # the table of the new run
            assert app.locator(".unloc-error").count() == 0
            page.wait_for_timeout(500)
            shot.parent.mkdir(parents=True, exist_ok=True)
            app.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            context.close()
    assert shot.stat().st_size > 20_000
    print(f"browser test: {time.time() - started:.0f} s, screenshot {shot}")
