"""A web page to try exported models: type a text, see the label, a probability bar per class and the words
highlighted by their LIME weight.

    textzoo demo --models=exports                      # every model exported there
    textzoo demo --models=runs/minilm_l6_bbc_news-quick --models=exports/ngram_linear_bbc_news --port=8080

It reads the SavedModels (what TF Serving would serve), not the training side's objects. A demo for people, served
by Flask's own server on one machine: serve the models themselves with TF Serving.

API (JSON): GET /api/models -> [{name, version, class_names, backbone, dataset, test_accuracy}];
POST /api/predict {model, text, explain: bool, num_samples, seed} -> {model, label, probabilities: [{name,
probability}], explanation: {spans, classes, num_samples, seed, seconds} or null, seconds}. `model` may be left out
only where one model is served; `explain` defaults to false (LIME scores `num_samples` variants of the text). Every
error, an oversized request's included, is JSON: {error}.
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

STATIC = pathlib.Path(__file__).with_name("demo_static")
MAX_SAMPLES = 5000
MAX_REQUEST_BYTES = 2 * 1024 * 1024


def create_app(paths, num_samples=500):
    """The Flask app over the exports found under `paths` (`zoo.served.find_exports`); models load on first use."""
    import flask

    from zoo import explain
    from zoo import served

    exports = served.find_exports(paths)
    loaded, lock = {}, threading.Lock()
    web = flask.Flask(__name__, static_folder=None)
    web.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

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

    @web.get("/")
    def page():
        return flask.send_file(STATIC / "index.html")

    @web.get("/api/models")
    def models():
        return flask.jsonify([model(name).describe() for name in sorted(exports)])

    @web.post("/api/predict")
    def predict():
        request = flask.request.get_json(silent=True)
        if not isinstance(request, dict):
            return error("Expected a JSON object {model, text, explain, num_samples}.")
        name, text = request.get("model"), request.get("text")
        if name is None and len(exports) > 1:
            return error(f"Expected 'model', one of {sorted(exports)} (several are served).")
        name = next(iter(exports)) if name is None else name
        if name not in exports:
            return error(f"Unknown model {name!r}; available: {sorted(exports)}.", 404)
        if not isinstance(text, str):
            return error(f"Expected 'text' to be a string, received {type(text).__name__}.")
        samples = request.get("num_samples", num_samples)
        if not isinstance(samples, int) or not 2 <= samples <= MAX_SAMPLES:
            return error(f"Expected 'num_samples' to be an integer from 2 to {MAX_SAMPLES}, received {samples!r}.")
        started = time.time()
        chosen = model(name)
        probabilities = chosen.predict_proba([text])[0]
        label = chosen.class_names[int(probabilities.argmax())]
        explanation = None
        if request.get("explain", False):
            explanation = explain.as_json(explain.explain(chosen, text, samples, int(request.get("seed", 0))))
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
        web = create_app(_MODELS.value, _NUM_SAMPLES.value)
    except served.ModelPathError as e:
        raise app.UsageError(f"--models: {e}")
    server = serving.make_server(_HOST.value, _PORT.value, web, threaded=True)
    # One line a test or a person can read the address from.
    print(f"Demo serving on http://{_HOST.value}:{server.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    console.run(main)
