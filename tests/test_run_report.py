"""report.html: the numbers, escaping, self-containment, and the page in a real headless Chromium.

The browser tests drive /usr/bin/chromium (Debian's package; .ci/run installs it). Console errors
are caught through the DevTools protocol: the test attaches to the page over a websocket before
navigating and records console.error/assert calls, uncaught exceptions, browser log errors (e.g.
"Failed to load resource"), failed loads and any request that leaves file:/data:. Deliberately
broken pages check that this detector does flag what it is meant to flag.
"""
import base64
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import List

import pytest

from pipeline.run_report import render_report, write_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
BROWSER_TIMEOUT = 60.0
# src=/href=/url(...)/@import pointing at the network (scheme-relative "//host" included).
NETWORK_REFERENCE = re.compile(r"""(?:\b(?:src|href|srcset|action|poster)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?)"""
                               r"""\s*(?:https?:)?//""", re.IGNORECASE)


def _embedding_png(path: Path) -> Path:
    """A real small PNG, drawn by matplotlib like the embedding report's chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.add_subplot()
    axes.barh(["awful", "bad", "good", "great"], [-1.2, -0.6, 0.3, 1.1], color=["#e76f51"] * 2 + ["#2a9d8f"] * 2)
    axes.set_title("embedding direction")
    fig.savefig(path)
    return path


def _full_summary(png: Path) -> dict:
    metrics = {"overall": {"accuracy": 0.8812, "auc": 0.9504, "precision": 0.8731, "recall": 0.8915,
                           "example_count": 2435},
               "by_length_bucket": {"000-099": {"accuracy": 0.8123, "auc": 0.9011, "example_count": 301},
                                    "100-199": {"accuracy": 0.8644, "auc": 0.9377, "example_count": 1101},
                                    "400+": {"accuracy": 0.9021, "auc": 0.9602, "example_count": 233}}}
    baseline = {"overall": {"accuracy": 0.8701, "auc": 0.9455, "precision": 0.8650, "recall": 0.8702,
                            "example_count": 2435},
                "by_length_bucket": {"000-099": {"accuracy": 0.8301, "auc": 0.9050, "example_count": 301},
                                     "400+": {"accuracy": 0.8899, "auc": 0.9580, "example_count": 233}}}
    history = [{"round": r, "epoch": r / 2, "loss": 0.69 - 0.1 * r, "accuracy": 0.52 + 0.09 * r,
                "auc": 0.55 + 0.09 * r, "val_loss": 0.68 - 0.08 * r + 0.03 * max(0, r - 3) ** 2,
                "val_accuracy": 0.6 + 0.07 * r - 0.02 * max(0, r - 3), "val_auc": 0.62 + 0.07 * r}
               for r in range(1, 6)]
    return {
        "status": "succeeded", "seconds": 532.4, "model_family": "gru", "started_at": "2026-11-26T12:00:00Z",
        "log": "/work/workdir/logs/run-20261126-120000.log",
        "config": {"model": "gru", "epochs": 3, "accuracy_threshold": 0.8, "baseline_margin": 0.01},
        "components": {"ImdbExampleGen": {"execution_id": 3, "cached": False, "seconds": 12.3},
                       "StatisticsGen": {"execution_id": 4, "cached": True, "seconds": 0.4},
                       "Transform": {"execution_id": 7, "cached": False, "seconds": 88.17},
                       "Trainer": {"execution_id": 8, "cached": False, "seconds": 371.0},
                       "Evaluator": {"execution_id": 9, "cached": False, "seconds": 52.9},
                       "Pusher": {"execution_id": 10, "cached": False, "seconds": 1.2}},
        "data": {"examples_per_split": {"train": 22512, "eval": 2488, "test": 25000}, "rejected": 3,
                 "rejected_by_reason": {"not UTF-8": 2, "empty": 1}},
        "training": {"history": history, "best_round": 3},
        "eval_metrics": metrics, "baseline_metrics": baseline, "blessed": True,
        "blessing_rules": [
            {"slice": "overall", "metric": "accuracy", "kind": "floor", "value": 0.8812, "bound": 0.8,
             "passed": True, "gated": True, "sentence": "accuracy 0.881 is at least the floor 0.800"},
            {"slice": "overall", "metric": "accuracy", "kind": "change", "value": 0.0111, "bound": -0.01,
             "passed": True, "gated": True, "sentence": "accuracy changed by +0.011 vs the baseline (allowed -0.010)"},
            {"slice": "000-099", "metric": "accuracy", "kind": "change", "value": -0.0178, "bound": -0.01,
             "passed": False, "gated": False, "sentence": "short reviews lost 0.018 accuracy (reported, not gated)"}],
        "pushed": True, "pushed_path": "/work/workdir/serving/1764158400", "pushed_version": "1764158400",
        "already_serving": False,
        "embedding_report": {"method": "model-scored", "description": "centroid of the top vs bottom words",
                             "n_words": 5000, "heldout_correlation": 0.734, "png": str(png),
                             "html": str(png.with_suffix(".html")),
                             "most_positive": [["excellent", 2.31], ["superb", 2.05], ["<b>bold</b>", 1.5]],
                             "most_negative": [["worst", -2.71], ["waste", -2.4]],
                             "probes": {"good": {"position": 0.21, "percentile": 61.0, "frequency_rank": 40,
                                                 "score": 0.6}}},
        "tensorboard_logdir": "/work/workdir/pipeline_root/Trainer/model_run/8",
    }


def _failed_summary() -> dict:
    return {"status": "failed",
            "error": 'DataValidationGate stopped the run: feature "text" <script>alert(1)</script> is missing.',
            "components": {"ImdbExampleGen": {"execution_id": 3, "cached": False, "seconds": 10.0},
                           "DataValidationGate": {"execution_id": 6, "cached": False, "seconds": 0.8}}}


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    return _embedding_png(tmp_path_factory.mktemp("embedding") / "embedding_report.png")


@pytest.fixture(scope="module")
def full_html(picture) -> str:
    return render_report(_full_summary(picture))


# ----------------------------------------------------------------------------- the page's text

def test_full_report_shows_the_numbers(full_html, picture):
    text = re.sub(r"\s+", " ", full_html)
    assert "<td>overall</td><td class=\"num\">2,435</td>" in text
    for expected in ("0.881", "0.870", "+0.011", "-0.018", "0.950", "22,512", "not UTF-8", "empty",
                     "accuracy 0.881 is at least the floor 0.800", "short reviews lost 0.018 accuracy",
                     "not gated", "/work/workdir/serving/1764158400", "1764158400", "excellent", "+2.310",
                     "-2.710", "ImdbExampleGen", "88.2", "2026-11-26 12:00:00 UTC", "8 min 52 s", "gru",
                     "best: round 3", "baseline", "model-scored"):
        assert expected in text, expected
    assert 'class="fail"' not in text and text.count('class="pass"') == 2 and 'class="not-gated"' in text
    assert 'class="num down">-0.018<' in text and 'class="num up">+0.011<' in text
    assert "not available" not in text
    pictures = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', full_html)
    assert len(pictures) == 2  # the training curves and the embedding picture
    assert base64.b64encode(picture.read_bytes()).decode() in pictures


def test_review_strings_are_escaped(full_html):
    summary = _failed_summary()
    summary["data"] = {"examples_per_split": {"train": 1}, "rejected": 1,
                       "rejected_by_reason": {'<img src=x onerror="alert(2)">': 1}}
    page = render_report(summary)
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page
    assert "<b>bold</b>" not in full_html and "&lt;b&gt;bold&lt;/b&gt;" in full_html


def test_conflicting_labels_are_in_the_data_account():
    summary = _failed_summary()
    summary["data"] = {"examples_per_split": {"train": 20}, "seen": 30, "rejected": 0, "rejected_by_reason": {},
                       "duplicates_dropped": 4, "label_conflicts": 6, "ignored": 0,
                       "label_conflict_examples": ["aclImdb/train/neg/1_2.txt", "aclImdb/train/pos/1_9.txt"]}
    text = re.sub(r"\s+", " ", render_report(summary))
    assert "+ 4 exact duplicates dropped" in text
    assert "+ 6 dropped for conflicting labels (every copy of a text filed under both labels" in text
    assert "<code>aclImdb/train/neg/1_2.txt</code>, <code>aclImdb/train/pos/1_9.txt</code>" in text


def test_the_page_references_nothing_on_the_network(full_html):
    for probe in ('<img src="https://cdn.example/x.png">', "<link href='//fonts.example/css'>",
                  "<style>@import url(http://x/y.css)</style>"):
        assert NETWORK_REFERENCE.search(probe), probe  # the check itself can fail
    assert not NETWORK_REFERENCE.search(full_html)
    assert "<script" not in full_html and "<link" not in full_html


def test_failed_run_renders_and_shows_the_error():
    page = render_report(_failed_summary())
    text = re.sub(r"\s+", " ", page)
    assert 'class="badge failed">failed<' in text
    assert "DataValidationGate stopped the run: feature &#34;text&#34;" in text
    assert "DataValidationGate</td>" in text and "10.8" in text  # the components table and its total
    for section in ("Data counts", "Training history", "Evaluation metrics", "The blessing decision",
                    "The push result", "The embedding report"):
        assert f"{section}: not available" in text, section


def test_baseline_columns_only_with_a_baseline(picture):
    summary = _full_summary(picture)
    summary["baseline_metrics"] = None
    page = render_report(summary)
    assert "baseline</th>" not in page and "No baseline" in page
    assert "0.881" in page and "+0.011" not in page.split('id="blessing"')[0]


def test_empty_summary_and_unreadable_picture(tmp_path):
    assert "not available" in render_report({})
    summary = {"status": "succeeded", "embedding_report": {"png": str(tmp_path / "missing.png"),
                                                            "most_positive": ["great", "superb"]}}
    page = render_report(summary)
    assert "could not be read" in page and "missing.png" in page and "superb" in page


def test_write_report_returns_the_path(tmp_path, picture):
    path = str(tmp_path / "nested" / "report.html")
    assert write_report(_full_summary(picture), path) == path
    assert Path(path).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# ----------------------------------------------------------------------------- a real browser

@pytest.fixture
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message + ", and CI is set: the browser test must run in CI")
        pytest.skip(message)
    return CHROMIUM


def _stop(process: subprocess.Popen) -> None:
    """Ends the browser and its helper processes (its own process group) within a few seconds."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers left behind after the main process exited
    except (ProcessLookupError, PermissionError):
        pass


def _screenshot(chromium: str, page: Path, out: Path, profile: Path) -> Path:
    process = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                                "--window-size=1280,2000", "--hide-scrollbars", page.as_uri()],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=BROWSER_TIMEOUT)
    finally:
        _stop(process)
    assert out.exists(), f"no screenshot; chromium said:\n{stderr.decode(errors='replace')[-2000:]}"
    return out


class _DevTools:
    """A minimal Chrome DevTools protocol client: numbered calls, events kept in arrival order."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=BROWSER_TIMEOUT, suppress_origin=True)
        self.events: List[dict] = []
        self._next_id = 0

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next_id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, deadline: float) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))  # a timeout raises: the page never loaded

    def drain(self, seconds: float) -> None:
        """Late events (errors after the load event) arriving within ``seconds``."""
        import websocket

        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break


def _page_target(port: int, deadline: float) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never a proxy
    while True:
        targets = json.loads(opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
        if pages:
            return pages[0]
        assert time.monotonic() < deadline, f"no page target in {targets}"
        time.sleep(0.1)


def _console_problems(chromium: str, page: Path, profile: Path) -> List[str]:
    """Console errors, uncaught exceptions, failed loads and non-local requests of ``page``."""
    deadline = time.monotonic() + BROWSER_TIMEOUT
    log = profile.with_suffix(".stderr")
    with open(log, "wb") as stderr:
        process = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-port=0", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    client = None
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert process.poll() is None, f"chromium exited early:\n{log.read_text(errors='replace')[-2000:]}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        client = _DevTools(_page_target(int(port_file.read_text().split()[0]), deadline))
        for domain in ("Runtime", "Log", "Network", "Page"):
            client.call(f"{domain}.enable")
        client.call("Page.navigate", url=page.as_uri())
        client.wait_for("Page.loadEventFired", deadline)
        client.drain(0.5)
    finally:
        if client is not None:
            client.ws.close()
        _stop(process)
    return _problems(client.events)


def _problems(events: List[dict]) -> List[str]:
    urls = {}
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            problems.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            problems.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            urls[params.get("requestId")] = url
            if not url.startswith(("file:", "data:", "about:")):
                problems.append(f"network request: {url}")
        elif method == "Network.loadingFailed":
            problems.append(f"load failed: {urls.get(params.get('requestId'), '?')} {params.get('errorText')}")
    return problems


@pytest.mark.parametrize("body, expected", [
    ('<script>console.error("x")</script>', "console.error: x"),
    ("<script>throw new Error('boom')</script>", "exception: Error: boom"),
    ('<img src="missing.png" alt="">', "missing.png"),
    ('<img src="http://127.0.0.1:9/x.png" alt="">', "network request: http://127.0.0.1:9/x.png"),
])
def test_the_console_detector_flags_broken_pages(chromium, tmp_path, body, expected):
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body><p>hi</p>{body}</body></html>")
    problems = _console_problems(chromium, page, tmp_path / "profile")
    assert any(expected in problem for problem in problems), problems


def test_report_in_headless_chromium(chromium, tmp_path):
    from PIL import Image

    page = Path(write_report(_full_summary(_embedding_png(tmp_path / "embedding_report.png")),
                             str(tmp_path / "report.html")))
    assert _console_problems(chromium, page, tmp_path / "profile-console") == []

    shot = _screenshot(chromium, page, tmp_path / "report.png", tmp_path / "profile-screenshot")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    colours = image.getcolors(maxcolors=1 << 24)
    background = max(colours)[0]
    covered = 1 - background / (image.width * image.height)
    assert len(colours) > 200 and covered > 0.2, (len(colours), covered)  # text, tables and the chart drew
    ok_green = sum(n for n, (r, g, b) in colours if abs(r - 0x1a) + abs(g - 0x7f) + abs(b - 0x37) < 30)
    assert ok_green > 200, ok_green  # the green "succeeded" badge: the page's CSS was applied
