"""Which words drove a prediction: LIME (`lime.lime_text`) over an export's serving function.

LIME removes words from the text at random (`num_samples` variants, seeded), asks the model for every variant in
batches, and fits a weighted linear model per class on which words were kept: a word's weight is how much keeping
it adds to that class's probability near this text. The same seed gives the same explanation.
"""

import time

import numpy as np

DEFAULT_SAMPLES = 1000
DEFAULT_FEATURES = 10
# LIME's work and memory grow with samples x words: a [samples, words] float64 matrix (several copies of it) and
# `num_samples` variants of the text. The bound allows 5,000 samples of an 800-word text, 500 of an 8,000-word one
# (docs/measurements.md#explain-budget).
MAX_SAMPLE_WORDS = 4_000_000


class ExplainError(ValueError):
    pass


class _CountedModel:
    """The model's probabilities, counting calls and texts (LIME asks for all its variants in one call; the model
    batches them)."""

    def __init__(self, model):
        self.model, self.calls, self.texts = model, 0, 0

    def __call__(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return np.asarray(self.model.predict_proba(list(texts)), dtype=np.float64)


def explain(model, text, num_samples=DEFAULT_SAMPLES, seed=0, num_features=DEFAULT_FEATURES):
    """An explanation of `model`'s prediction for `text`, JSON-ready.

    model: anything with `class_names` and `predict_proba(texts)` (`zoo.served.ServedModel`).
    Returns: {"label", "probabilities" {class: p}, "classes" {class: [{"word", "weight"}] strongest first, the top
    `num_features` of each class}, "spans" [{"start", "end", "word", "weight"}] for the predicted class, every
    occurrence of each word in the text, "num_samples", "seed", "seconds", "model_calls", "score"}.
    """
    from lime import lime_text

    if not isinstance(text, str):
        raise ExplainError(f"Expected a text (str), received {type(text).__name__}.")
    if num_samples < 2:
        raise ExplainError(f"num_samples must be at least 2 (LIME fits a model on them), received {num_samples}.")
    started = time.time()
    counted = _CountedModel(model)
    class_names = list(model.class_names)
    probabilities = counted([text])[0]
    predicted = int(probabilities.argmax())
    result = {"label": class_names[predicted],
              "probabilities": {c: float(p) for c, p in zip(class_names, probabilities)},
              "classes": {c: [] for c in class_names}, "spans": [], "num_samples": num_samples, "seed": seed,
              "num_features": num_features}
    explainer = lime_text.LimeTextExplainer(class_names=class_names, random_state=seed)
    words = lime_text.IndexedString(text, split_expression=explainer.split_expression, bow=explainer.bow)
    check_budget(words.num_words(), num_samples)
    if words.num_words() == 0:  # Nothing to remove: an empty text, or only punctuation.
        result.update(seconds=round(time.time() - started, 3), model_calls=counted.calls, score=None,
                      note="the text has no words to explain")
        return result
    explanation = explainer.explain_instance(text, counted, labels=range(len(class_names)),
                                             num_features=min(num_features, words.num_words()),
                                             num_samples=num_samples)
    mapper = explanation.domain_mapper.indexed_string
    for label, name in enumerate(class_names):
        result["classes"][name] = [{"word": mapper.word(i), "weight": float(w)}
                                   for i, w in explanation.as_map()[label]]
    for i, weight in explanation.as_map()[predicted]:
        word = mapper.word(i)
        for start in mapper.string_position(i):
            result["spans"].append({"start": int(start), "end": int(start) + len(word), "word": word,
                                    "weight": float(weight)})
    result["spans"].sort(key=lambda s: s["start"])
    result.update(seconds=round(time.time() - started, 3), model_calls=counted.calls,
                  score=float(explanation.score[predicted]) if isinstance(explanation.score, dict)
                  else float(explanation.score))
    result["_lime"] = explanation  # For the HTML page; not JSON (dropped by `as_json`).
    return result


def check_budget(num_words, num_samples):
    """Refuses an explanation whose samples x distinct words exceed MAX_SAMPLE_WORDS, saying how many samples this
    text allows."""
    if num_words * num_samples > MAX_SAMPLE_WORDS:
        allowed = MAX_SAMPLE_WORDS // max(num_words, 1)
        raise ExplainError(
            f"Explaining takes at most {MAX_SAMPLE_WORDS:,} samples x distinct words; this text has {num_words:,} "
            f"distinct words and {num_samples:,} samples were asked for: "
            + (f"ask for at most {allowed:,} samples, or explain a shorter part of the text." if allowed >= 2 else
               "explain a shorter part of the text."))


def as_json(result):
    return {k: v for k, v in result.items() if not k.startswith("_")}


def write_html(result, path):
    """LIME's own page for the explanation: probabilities, weights per class and the text highlighted."""
    if "_lime" not in result:
        path.write_text(f"<p>{result.get('note', 'nothing to explain')}</p>\n", encoding="utf-8")
        return
    labels = list(range(len(result["probabilities"])))
    result["_lime"].save_to_file(str(path), labels=labels)
