"""Times an export's serving_default in this process, as the environment set it up (the runner starts it with
TF_ENABLE_ONEDNN_OPTS=0, read at TensorFlow's import). Prints one JSON line.

    python -m benchmarks.serve_rate REQUEST_JSON    # {"export": DIR, "batches": [[text, ...], ...], "warmup": 2,
                                                    #  "min_seconds": 1.0}
"""

import json
import sys

import tensorflow_text  # noqa: F401  Registers the tf-text ops the export's tokenizer uses.

from benchmarks import timing


def main(request_file):
    with open(request_file) as f:
        request = json.load(f)
    rate = timing.time_batches(timing.served(request["export"]), request["batches"], warmup=request["warmup"],
                               min_seconds=request["min_seconds"])
    print(json.dumps({"examples_per_second": rate}))


if __name__ == "__main__":
    main(sys.argv[1])
