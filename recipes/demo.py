"""A web page to try exported models: type a text, see the label, a probability bar per class and the words
highlighted by their LIME weight.

    textzoo demo --models=exports                      # every model exported there
    textzoo demo --models=runs/minilm_l6_bbc_news-quick --models=exports/ngram_linear_bbc_news --port=8080

It reads the SavedModels (what TF Serving would serve), not the training side's objects. A demo for people, served
by Flask's own server on one machine: serve the models themselves with TF Serving.

API (JSON): GET /api/models -> [{name, version, class_names, backbone, dataset, test_accuracy}];
POST /api/predict {model, text, explain: bool, num_samples, seed} -> {model, label, probabilities: [{name,
probability}], explanation: {spans, classes, num_samples, seed, seconds} or null, seconds}. `model` may be left out
only where one model is served; `explain` defaults to false (LIME scores `num_samples` variants of the text, at
most `zoo.explain.MAX_SAMPLE_WORDS` samples x words). Every error, an oversized request's, an unknown path's and an
untrusted Host header's included, is JSON: {error}. It answers Host headers of loopback, --host and
--allowed_hosts only.
"""

import pathlib
import threading
import time

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import console  # noqa: E402

_MODELS = flags.DEFINE_multi_string("models", ["exports"], "Export directories, exported models or run directories "
                                    "(repeatable).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0 for other machines).")
_PORT = flags.DEFINE_integer("port", 8501, "Port (0: any free one, printed).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 500, "LIME's default sample count (the page may ask for another).")
_ALLOWED_HOSTS = flags.DEFINE_list("allowed_hosts", [], "Host names the demo answers besides loopback and --host "
                                   "(the names other machines reach it by, with --host=0.0.0.0): a request naming "
                                   "another Host is refused (DNS rebinding).")

STATIC = pathlib.Path(__file__).with_name("demo_static")
MAX_SAMPLES = 5000
MAX_REQUEST_BYTES = 2 * 1024 * 1024


# Host headers the demo answers (DNS rebinding: a page of another site whose name resolves to this machine would
# otherwise reach the API through the visitor's browser). Loopback names always; others with --allowed_hosts.
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]


def trusted_hosts(host, allowed=()):
    """The host names the demo answers when it listens on `host`: loopback, `host` itself where it is a name or an
    address (not every address), and `allowed`."""
    listening = [] if host in ("0.0.0.0", "::", "") else [host]
    return list(dict.fromkeys(LOOPBACK_HOSTS + listening + list(allowed)))


def create_app(paths, num_samples=500, hosts=None):
    """The Flask app over the exports found under `paths` (`zoo.served.find_exports`); models load on first use.
    `hosts`: the Host headers it answers (Flask's TRUSTED_HOSTS; default `trusted_hosts("127.0.0.1")`)."""
    import flask
    from werkzeug import exceptions

    from zoo import explain
    from zoo import served
    from zoo import text as text_lib

    exports = served.find_exports(paths)
    loaded, lock = {}, threading.Lock()
    web = flask.Flask(__name__, static_folder=None)
    web.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    web.config["TRUSTED_HOSTS"] = hosts or trusted_hosts("127.0.0.1")

    def model(name):
        with lock:  # One load per model, whatever the concurrent requests.
            if name not in loaded:
                loaded[name] = served.ServedModel(exports[name])
            return loaded[name]

    def error(message, status=400):
        return flask.jsonify({"error": message}), status

    @web.errorhandler(413)
    def too_large(_):
        return error(f"The request is {flask.request.content_length} bytes; the demo takes at most "
                     f"{MAX_REQUEST_BYTES} (and a model reads the first 1,000,000 bytes of a text).", 413)

    @web.errorhandler(exceptions.HTTPException)
    def http_error(e):  # 404, 405, an untrusted Host (400): JSON like every other answer.
        if isinstance(e, exceptions.SecurityError):
            return error(f"Host {flask.request.headers.get('Host')!r} is not one this demo answers "
                         f"({web.config['TRUSTED_HOSTS']}); start it with --allowed_hosts=NAME to add one.", 400)
        return error(f"{e.code} {e.name}: {e.description}", e.code)

    @web.errorhandler(Exception)
    def internal_error(e):
        web.logger.exception("Request failed")
        return error(f"The demo failed on this request ({type(e).__name__}); its log has the details.", 500)

    @web.get("/")
    def page():
        return flask.send_file(STATIC / "index.html")

    @web.get("/api/models")
    def models():
        return flask.jsonify([model(name).describe() for name in sorted(exports)])

    def read_request():
        try:
            request = flask.request.get_json(silent=True)
        except RecursionError:
            return None, error("The JSON is nested too deeply; expected a flat object {model, text, explain, "
                               "num_samples, seed}.")
        if not isinstance(request, dict):
            return None, error("Expected a JSON object {model, text, explain, num_samples, seed}.")
        return request, None

    @web.post("/api/predict")
    def predict():
        request, failed = read_request()
        if failed:
            return failed
        name, text = request.get("model"), request.get("text")
        if name is None and len(exports) > 1:
            return error(f"Expected 'model', one of {sorted(exports)} (several are served).")
        name = next(iter(exports)) if name is None else name
        if not isinstance(name, str):
            return error(f"Expected 'model' to be a model name (a string), received {type(name).__name__}.")
        if name not in exports:
            return error(f"Unknown model {name!r}; available: {sorted(exports)}.", 404)
        if not isinstance(text, str):
            return error(f"Expected 'text' to be a string, received {type(text).__name__}.")
        text = text_lib.cut_text(text)  # A lone surrogate (JSON's "\\ud800") becomes U+FFFD, as the model reads it.
        samples, seed, explained = (request.get("num_samples", num_samples), request.get("seed", 0),
                                    request.get("explain", False))
        for field, value, allowed in (("num_samples", samples, f"an integer from 2 to {MAX_SAMPLES}"),
                                      ("seed", seed, "an integer")):
            if not isinstance(value, int) or isinstance(value, bool):
                return error(f"Expected '{field}' to be {allowed}, received {value!r}.")
        if not 2 <= samples <= MAX_SAMPLES:
            return error(f"Expected 'num_samples' to be an integer from 2 to {MAX_SAMPLES}, received {samples!r}.")
        if not isinstance(explained, bool):
            return error(f"Expected 'explain' to be true or false, received {explained!r}.")
        started = time.time()
        chosen = model(name)
        probabilities = chosen.predict_proba([text])[0]
        label = chosen.class_names[int(probabilities.argmax())]
        explanation = None
        if explained:
            try:
                explanation = explain.as_json(explain.explain(chosen, text, samples, seed))
            except explain.ExplainError as e:
                return error(str(e), 413)
        return flask.jsonify({
            "model": chosen.describe(), "label": label,
            "probabilities": [{"name": c, "probability": float(p)} for c, p in zip(chosen.class_names, probabilities)],
            "explanation": explanation, "seconds": time.time() - started})

    return web


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    from werkzeug import serving

    from zoo import served

    try:
        web = create_app(_MODELS.value, _NUM_SAMPLES.value, trusted_hosts(_HOST.value, _ALLOWED_HOSTS.value))
    except served.ModelPathError as e:
        raise app.UsageError(f"--models: {e}")
    server = serving.make_server(_HOST.value, _PORT.value, web, threaded=True)
    # One line a test or a person can read the address from.
    print(f"Demo serving on http://{_HOST.value}:{server.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    console.run(main)
