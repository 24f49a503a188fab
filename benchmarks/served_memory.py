"""The memory an export takes to serve one large request, measured in a fresh process that holds only the loaded
export: what a TF Serving host must have for the largest request it accepts. Each benchmark row records it
(`served_memory`): the resident memory before the request (model loaded and warmed up) and the peak during it.

    python -m benchmarks.served_memory REQUEST_JSON    # {"export": DIR, "texts": [text, ...]}; prints one JSON line

`request(texts)` makes the request the benchmark sends: REQUEST_TEXTS short texts (the first REQUEST_WORDS words of
the test texts, repeated in turn). A model whose memory grows with the vocabulary or the batch shows it here
(docs/measurements.md#ngram-sparse-served).
"""

import json
import pathlib
import sys

from benchmarks import timing

REQUEST_TEXTS = 10_000
REQUEST_WORDS = 12


def request(texts, size=REQUEST_TEXTS, words=REQUEST_WORDS):
    """`size` short texts: the first `words` words of each of `texts` (the non-empty ones), repeated in turn."""
    short = [" ".join(t.split()[:words]) for t in texts if t.split()]
    if not short:
        raise ValueError("No text with a word to make the memory request of.")
    return [short[i % len(short)] for i in range(size)]


def _memory_mb(field):
    """A field of /proc/self/status in MB (VmRSS: resident now; VmHWM: the peak since the last reset)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}.")


def _reset_peak():
    """Resets VmHWM to the resident memory now (Linux 4.0+): the peak measured after it is the request's."""
    pathlib.Path("/proc/self/clear_refs").write_text("5")


def measure(export_path, texts):
    """{"texts", "resident_mb" (loaded and warmed up), "peak_mb" (during the request), "increase_mb"} of one call
    of the export's serving_default on `texts`, in this process."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  Registers the tf-text ops the export's tokenizer uses.

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    serve(text=tf.constant(texts[:8], dtype=tf.string))  # Traced and warmed up: what a server has done before.
    _reset_peak()
    resident = _memory_mb("VmRSS")
    probabilities = serve(text=tf.constant(texts, dtype=tf.string))["probabilities"].numpy()
    peak = _memory_mb("VmHWM")
    if probabilities.shape[0] != len(texts):
        raise RuntimeError(f"{export_path} answered {probabilities.shape[0]} rows for {len(texts)} texts.")
    return {"texts": len(texts), "resident_mb": round(resident, 1), "peak_mb": round(peak, 1),
            "increase_mb": round(peak - resident, 1)}


def in_fresh_process(export_path, texts):
    """`measure` in a fresh Python process (a process that trained or served before holds memory of its own)."""
    return timing.in_fresh_process("benchmarks.served_memory",
                                   {"export": str(pathlib.Path(export_path).resolve()), "texts": texts},
                                   f"Measuring the served memory of {export_path}")


def main(request_file):
    request_json = json.loads(pathlib.Path(request_file).read_text())
    print(json.dumps(measure(request_json["export"], request_json["texts"])))


if __name__ == "__main__":
    main(sys.argv[1])
