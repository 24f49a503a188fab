"""LIME explanations over exports, and the demo page driven in a real headless Chromium (Debian's)."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

import zoo

from recipes import catalog
from zoo import experiment
from zoo import explain
from zoo import served
from zoo import training

REPO = pathlib.Path(__file__).resolve().parents[1]
SPORT_TEXT = ("The striker scored twice as the champions won the match, and the coach praised his players "
              "before the cup final next season.")
SPORT_WORDS = {"striker", "scored", "champions", "won", "match", "coach", "players", "cup", "final", "season",
               "twice", "praised"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def bbc_export(tmp_path_factory):
    """The n-gram model of BBC News at the quick budget (seconds), exported."""
    root = tmp_path_factory.mktemp("bbc")
    recipe = {**catalog.resolve("ngram_linear_bbc_news", "quick"), "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="float32", family="bag_of_words")
    metrics = experiment.train_and_evaluate(recipe, root / "run", runtime, export_dir=root / "exports")
    return root, pathlib.Path(metrics["export"])


def test_explanation_of_a_sport_text_ranks_sport_words_first(bbc_export):
    model = served.ServedModel(bbc_export[1])
    result = explain.explain(model, SPORT_TEXT, num_samples=500, seed=3)
    assert result["label"] == "sport"
    # The strongest words for sport are sport words (a function word may come in later: "the" is in it 3 times).
    top = [w["word"].lower() for w in result["classes"]["sport"][:5]]
    assert top[0] in SPORT_WORDS and len(SPORT_WORDS & set(top)) >= 3, top
    assert result["classes"]["sport"][0]["weight"] > 0
    # One call for the text, one for all 500 variants (the model batches them), and the count printed is real.
    assert result["model_calls"] == 2 and result["num_samples"] == 500
    for span in result["spans"]:
        assert SPORT_TEXT[span["start"]:span["end"]] == span["word"]
    # Same seed, same explanation; another seed, other samples.
    again = explain.explain(model, SPORT_TEXT, num_samples=500, seed=3)
    assert explain.as_json(again)["classes"] == explain.as_json(result)["classes"]
    other = explain.explain(model, SPORT_TEXT, num_samples=500, seed=4)
    assert other["classes"]["sport"] != result["classes"]["sport"]


# A process of its own (~20 s): `make test-large`.
@pytest.mark.large
def test_explain_cli_writes_json_and_html(bbc_export, tmp_path):
    out = tmp_path / "explained"
    result = subprocess.run([sys.executable, "-m", "recipes.explain", f"--model={bbc_export[0] / 'run'}",
                             f"--text={SPORT_TEXT}", "--text=", "--num_samples=200", "--seed=1",
                             f"--output_dir={out}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "200 samples, 2 model calls" in result.stdout
    first = json.loads((out / "explanation-1.json").read_text())
    assert first["label"] == "sport" and first["seed"] == 1 and first["model"]["name"] == "ngram_linear_bbc_news"
    assert "<html" in (out / "explanation-1.html").read_text().lower()
    empty = json.loads((out / "explanation-2.json").read_text())  # An empty text: probabilities, no words.
    assert empty["spans"] == [] and empty["note"] == "the text has no words to explain"
    # A second call adds files after those there, never overwriting one.
    written = (out / "explanation-1.json").read_text()
    again = subprocess.run([sys.executable, "-m", "recipes.explain", f"--model={bbc_export[0] / 'run'}",
                            "--text=Shares rose", "--num_samples=50", f"--output_dir={out}"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "explanation-3.json").read_text())["text"] == "Shares rose"
    assert (out / "explanation-1.json").read_text() == written
    assert sorted(p.name for p in out.iterdir()) == [f"explanation-{n}.{kind}" for n in (1, 2, 3)
                                                     for kind in ("html", "json")]


def test_explain_rejects_bad_input(bbc_export):
    model = served.ServedModel(bbc_export[1])
    with pytest.raises(explain.ExplainError, match="received bytes"):
        explain.explain(model, b"bytes")
    with pytest.raises(explain.ExplainError, match="at least 2"):
        explain.explain(model, "text", num_samples=1)
    with pytest.raises(served.ModelPathError, match="holds no exported model"):
        served.find_exports([bbc_export[0] / "run" / "tensorboard"])


def chromium():
    found = os.environ.get("TEXTZOO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("No Chromium for the browser test: `make test` installs Debian's (apt-get install chromium); "
                    "or set $TEXTZOO_CHROMIUM to a Chromium executable.")
    return found


def test_demo_api_names_what_it_needs_and_answers_every_error_in_json(bbc_export, tmp_path):
    from recipes import demo as demo_lib

    exports = bbc_export[0] / "exports"
    one = demo_lib.create_app([exports]).test_client()
    # One model served: it answers without being named, and explains only when asked.
    answer = one.post("/api/predict", json={"text": SPORT_TEXT})
    assert answer.status_code == 200 and answer.json["label"] == "sport" and answer.json["explanation"] is None
    assert one.post("/api/predict", json={"text": SPORT_TEXT, "explain": True, "num_samples": 20}
                    ).json["explanation"]["num_samples"] == 20
    too_large = one.post("/api/predict", data="x" * (demo_lib.MAX_REQUEST_BYTES + 1), content_type="application/json")
    assert too_large.status_code == 413 and too_large.is_json
    assert f"at most {demo_lib.MAX_REQUEST_BYTES}" in too_large.json["error"]
    assert one.post("/api/predict", json={"text": 3}).json["error"] == "Expected 'text' to be a string, received int."

    # Two models: a request must say which.
    shutil.copytree(exports / "ngram_linear_bbc_news", tmp_path / "news_copy")
    two = demo_lib.create_app([exports, tmp_path / "news_copy"]).test_client()
    unnamed = two.post("/api/predict", json={"text": SPORT_TEXT})
    assert unnamed.status_code == 400 and unnamed.json["error"] == (
        "Expected 'model', one of ['news_copy', 'ngram_linear_bbc_news'] (several are served).")
    unknown = two.post("/api/predict", json={"model": "nope", "text": "x"})
    assert unknown.status_code == 404 and "available: ['news_copy', 'ngram_linear_bbc_news']" in unknown.json["error"]


def test_demo_answers_malformed_requests_and_other_hosts_in_json(bbc_export):
    """Each of these was an HTML 500 (or 404/405) page before; a Host header the demo does not serve is refused."""
    from recipes import demo as demo_lib

    client = demo_lib.create_app([bbc_export[0] / "exports"]).test_client()
    nested = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    cases = [
        (client.post("/api/predict", json={"model": ["a"], "text": "x"}), 400, "'model' to be a model name"),
        (client.post("/api/predict", json={"text": "x", "seed": "abc"}), 400, "'seed' to be an integer"),
        (client.post("/api/predict", json={"text": "x", "explain": "yes"}), 400, "'explain' to be true or false"),
        (client.post("/api/predict", json={"text": "x", "num_samples": True}), 400, "'num_samples' to be an"),
        (client.post("/api/predict", data=nested, content_type="application/json"), 400, "nested too deeply"),
        (client.get("/nope"), 404, "404 Not Found"),
        (client.get("/api/predict"), 405, "405 Method Not Allowed"),
        (client.post("/api/predict", json={"text": "x"}, headers={"Host": "attacker.example:8501"}), 400,
         "Host 'attacker.example:8501' is not one this demo answers"),
    ]
    for response, status, message in cases:
        assert (response.status_code, response.is_json) == (status, True), response.data[:300]
        assert message in response.json["error"], response.json
    surrogate = client.post("/api/predict", data='{"text": "half \\ud800 pair"}', content_type="application/json")
    assert surrogate.status_code == 200 and surrogate.json["label"]
    text = " ".join(f"word{i}" for i in range(2000))
    budget = client.post("/api/predict", json={"text": text, "explain": True, "num_samples": 5000})
    assert budget.status_code == 413 and "ask for at most 2,000 samples" in budget.json["error"]
    assert client.post("/api/predict", json={"text": "x"}, headers={"Host": "127.0.0.1:8501"}).status_code == 200
    assert demo_lib.trusted_hosts("0.0.0.0", ["demo.example"]) == ["localhost", "127.0.0.1", "::1", "[::1]",
                                                                   "demo.example"]
    assert "10.1.2.3" in demo_lib.trusted_hosts("10.1.2.3")


@pytest.fixture(scope="module")
def demo(bbc_export, tmp_path_factory):
    """`python -m recipes.demo` over an export directory and a run directory, as a user starts it."""
    tiny_root = tmp_path_factory.mktemp("tiny")
    recipe = {**catalog.resolve("ngram_linear_spam_assassin", "tiny"), "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="float32", family="bag_of_words")
    experiment.train_and_evaluate(recipe, tiny_root / "run", runtime, export_dir=tiny_root / "exports")
    process = subprocess.Popen([sys.executable, "-m", "recipes.demo", f"--models={bbc_export[0] / 'exports'}",
                                f"--models={tiny_root / 'run'}", "--port=0"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline, url = time.time() + 180, None
    while url is None and time.time() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if match := re.search(r"Demo serving on (http://\S+)", line):
            url = match.group(1)
    assert url, "the demo did not start"
    yield url
    process.kill()
    process.wait()


# The demo's process, a second export and Chromium (~1.5 min): `make test-large`.
@pytest.mark.large
def test_demo_page_in_a_real_browser(demo, bbc_export):
    from playwright.sync_api import sync_playwright

    screenshot = REPO / "tests" / "output" / "demo.png"
    screenshot.parent.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(demo)
        page.wait_for_selector("#model option", state="attached")
        names = page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
        assert names == ["ngram_linear_bbc_news", "ngram_linear_spam_assassin"]
        page.select_option("#model", "ngram_linear_bbc_news")
        page.fill("#text", SPORT_TEXT)
        page.click("#classify")
        page.wait_for_selector("#highlight span.word")
        assert page.inner_text("#label") == "sport"
        bars = page.eval_on_selector_all("#bars .bar", "bars => bars.map(b => [b.dataset.class, "
                                         "Number(b.dataset.probability), b.querySelector('.fill').style.width])")
        assert [b[0] for b in bars] == ["business", "entertainment", "politics", "sport", "tech"]
        assert sum(b[1] for b in bars) == pytest.approx(1.0, abs=1e-4)
        assert max(bars, key=lambda b: b[1])[0] == "sport"
        assert all(b[2] == f"{100 * b[1]:.1f}%" for b in bars)
        # The page shows the export's own probabilities.
        expected = served.ServedModel(bbc_export[1]).predict_proba([SPORT_TEXT])[0]
        assert [b[1] for b in bars] == pytest.approx(expected.tolist(), abs=1e-6)
        words = page.eval_on_selector_all("#highlight span.word", "ws => ws.map(w => [w.textContent, "
                                          "Number(w.dataset.weight)])")
        assert page.inner_text("#highlight") == SPORT_TEXT
        # The highlight is the explanation of the export at the page's sample count and seed 0.
        reference = explain.explain(served.ServedModel(bbc_export[1]), SPORT_TEXT, num_samples=500, seed=0)
        assert words == [[s["word"], pytest.approx(s["weight"], abs=1e-9)] for s in reference["spans"]]
        assert any(w[0].lower() in SPORT_WORDS and w[1] > 0 for w in words)
        page.screenshot(path=str(screenshot), full_page=True)
        # Switching models: the other export answers with its own classes.
        page.select_option("#model", "ngram_linear_spam_assassin")
        page.uncheck("#explain")
        page.fill("#text", "Free money!!! Click now to claim your prize")
        page.click("#classify")
        page.wait_for_function("document.querySelectorAll('#bars .bar').length == 2")
        assert page.inner_text("#label") in ("ham", "spam")
        # A request over the demo's limit: its error, in words, and no earlier answer left standing under it.
        page.evaluate("text => { document.querySelector('#text').value = text; }", "x" * (3 << 20))
        page.click("#classify")
        page.wait_for_function("document.querySelector('#error').textContent.length > 0")
        assert "bytes; the demo takes at most" in page.inner_text("#error")
        assert page.inner_text("#label") == "-" and page.eval_on_selector_all("#bars .bar", "b => b.length") == 0
        browser.close()
    assert screenshot.stat().st_size > 10_000
