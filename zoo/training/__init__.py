"""Training, by job: `runtime.py` (seed, devices, dtype policy, tf.distribute), `pipeline.py` (tf.data input
pipelines, length buckets, the frozen prefix's feature cache), `optimizers.py`, `callbacks.py`, `resumable.py`
(Keras' fit with them, resumable) and `classifier_fit.py` (how a `TextClassifier` trains: its training policy).
Everything is importable from `zoo.training`.

The preprocessor runs in tf.data (asynchronously, on the CPU), so the model trains on token ids or TF-IDF
vectors and the same preprocessor layer is folded into the exported graph afterwards.
"""

from zoo.training.classifier_fit import FitHistory  # noqa: F401
from zoo.training.classifier_fit import FitRun  # noqa: F401
from zoo.training.classifier_fit import fit_classifier  # noqa: F401
from zoo.training.classifier_fit import input_settings  # noqa: F401
from zoo.training.classifier_fit import split_validation  # noqa: F401
from zoo.training.callbacks import resumed_epoch  # noqa: F401
from zoo.training.optimizers import Adam  # noqa: F401
from zoo.training.optimizers import AdamW  # noqa: F401
from zoo.training.optimizers import LinearWarmupLinearDecay  # noqa: F401
from zoo.training.optimizers import make_optimizer  # noqa: F401
from zoo.training.pipeline import FEATURE_STORAGE_DTYPE  # noqa: F401
from zoo.training.pipeline import cache_features  # noqa: F401
from zoo.training.pipeline import estimated_batches  # noqa: F401
from zoo.training.pipeline import feature_dataset  # noqa: F401
from zoo.training.pipeline import input_pipeline  # noqa: F401
from zoo.training.pipeline import make_dataset  # noqa: F401
from zoo.training.resumable import fit  # noqa: F401
from zoo.training.runtime import CPU_FLAGS  # noqa: F401
from zoo.training.runtime import DTYPE_POLICIES  # noqa: F401
from zoo.training.runtime import STRATEGIES  # noqa: F401
from zoo.training.runtime import Runtime  # noqa: F401
from zoo.training.runtime import configure_runtime  # noqa: F401
from zoo.training.runtime import cpu_has_bf16  # noqa: F401
from zoo.training.runtime import cpu_info  # noqa: F401
from zoo.training.runtime import has_gpu  # noqa: F401
from zoo.training.runtime import is_chief  # noqa: F401
from zoo.training.runtime import library_versions  # noqa: F401
from zoo.training.runtime import onednn_off  # noqa: F401
from zoo.training.runtime import xla_and_determinism  # noqa: F401
