"""Runtime set-up: seed, devices, the dtype policy (bfloat16 where the CPU has it), XLA and tf.distribute."""

import dataclasses
import logging
import os
import pathlib
import platform

import keras
import tensorflow as tf

from zoo import compat
from zoo import seeds

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
# Mixed policies only: pure "float16" or "bfloat16" keep the variables in 16 bits, where Adam's small updates round
# away (float16 also without a loss scale: Keras wraps the optimizer only for mixed_float16).
DTYPE_POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")

# What a GPU changes is decided here, each choice with its reason in docs/gpu.md: the "auto" policy (mixed_float16,
# Keras' loss scaling), XLA for transformers only (`xla_and_determinism`), and the families that stay on the CPU of
# a GPU machine when runs are deterministic (their ops have no deterministic GPU kernel). Tested with a GPU faked
# (tests/test_mixed_precision.py); no GPU that runs TensorFlow was available to verify them on.
CPU_ON_GPU_MACHINES = {"bag_of_words": "its sparse product (SparseTensorDenseMatMul) has no deterministic GPU kernel"}


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_info(cpuinfo="/proc/cpuinfo"):
    """This machine's CPU: model, core count, and the flags that decide BERT's speed here (AVX-512 about 3.5x
    AVX2; AVX512_BF16 or AMX for mixed_bfloat16). Recorded with every benchmark figure."""
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        text = ""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", "unknown"), "cores": os.cpu_count(),
            "flags": {flag: flag in flags for flag in CPU_FLAGS}}


def library_versions():
    """The versions of the libraries a result depends on, recorded beside it (config.json, export_info.json)."""
    import keras_hub  # Third-party imports needed only here.
    import numpy
    import sklearn
    import tensorflow_text

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "tensorflow_text": tensorflow_text.__version__, "keras": keras.__version__,
            "keras_hub": keras_hub.__version__, "scikit_learn": sklearn.__version__, "numpy": numpy.__version__}


def cpu_has_bf16():
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX), where mixed_bfloat16 pays off."""
    flags = cpu_info()["flags"]
    return flags["avx512_bf16"] or flags["amx_bf16"]


def onednn_off():
    """Whether this process runs without oneDNN's kernels and graph fusions: TF_ENABLE_ONEDNN_OPTS=0 (or false)
    turns them off, and unset, TensorFlow's x86 Linux builds turn them on only on CPUs with AVX512_VNNI, AVX512_BF16
    or AMX (an AVX2-only CPU runs Eigen's kernels; TensorFlow decides at import)."""
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
        return True
    return not compat.onednn_enabled()


@dataclasses.dataclass
class Runtime:
    strategy: object
    dtype_policy: str
    jit_compile: bool
    device: str
    seed: int
    # Multi-worker training: this process's task ("worker", 1) and whether it is the chief, the one process that
    # writes the run directory, the metrics and the export. A single process is its own chief.
    task: tuple = (None, None)
    is_chief: bool = True
    deterministic: bool = True

    def record(self):
        return {"strategy": type(self.strategy).__name__, "replicas": self.strategy.num_replicas_in_sync,
                "dtype_policy": self.dtype_policy, "jit_compile": self.jit_compile,
                "deterministic": self.deterministic, "device": self.device,
                "seed": self.seed, **({"task": list(self.task)} if self.task[0] else {})}


def is_chief(task_type, task_id, cluster_spec=None):
    """The tf.distribute convention: the "chief" task, or worker 0 of a cluster without one."""
    if task_type is None or task_type == "chief":
        return True
    has_chief = bool(cluster_spec) and "chief" in cluster_spec
    return task_type == "worker" and task_id == 0 and not has_chief


def has_gpu():
    """Whether TensorFlow sees a GPU on this machine."""
    return bool(tf.config.list_physical_devices("GPU"))


def _usable_gpus(family, deterministic):
    """The GPUs this process trains on: none for a family that `CPU_ON_GPU_MACHINES` keeps on the CPU when runs
    are deterministic (the GPUs are hidden from TensorFlow, before it starts using devices)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and deterministic and family in CPU_ON_GPU_MACHINES:
        logging.info("A %s model runs on the CPU of this GPU machine: %s (pass --nodeterministic to use the GPU).",
                     family, CPU_ON_GPU_MACHINES[family])
        tf.config.set_visible_devices([], "GPU")
        return []
    return gpus


def xla_and_determinism(jit_compile, deterministic, family, gpu):
    """(jit_compile, deterministic) resolved. Keras 3.15 compiles nothing with XLA while op determinism is enabled
    (`fit` warns and proceeds with jit_compile=False), so the two exclude each other: None is XLA where it pays
    (transformers on a GPU: `CPU_ON_GPU_MACHINES` keeps the rest off it) and determinism wherever XLA is off;
    asking for both is an error."""
    if jit_compile is None:
        jit_compile = gpu and family == "transformer" and not deterministic
    if deterministic is None:
        deterministic = not jit_compile
    if jit_compile and deterministic:
        raise ValueError("jit_compile=True and deterministic=True exclude each other: Keras compiles nothing with XLA "
                         "while op determinism is enabled. Pass --nodeterministic for XLA, or --nojit_compile for "
                         "deterministic runs.")
    return bool(jit_compile), bool(deterministic)


def configure_runtime(seed=seeds.DEFAULT_SEED, dtype_policy="auto", jit_compile=None, strategy="default",
                      family="transformer", logical_cpu_devices=None, tpu_address=None, deterministic=None):
    """Seeds everything and picks devices, dtype policy, XLA and the distribution strategy.

    Args:
        dtype_policy: "auto" is mixed_float16 on a GPU, mixed_bfloat16 for transformers on a CPU with native
            bfloat16, float32 otherwise; or one of `DTYPE_POLICIES`.
        jit_compile: XLA; None where it pays: transformers on a GPU (it was slower than plain TF on CPUs here).
        strategy: "default", "mirrored" (all local GPUs, or logical CPUs), "multi_worker" (TF_CONFIG), "tpu".
        logical_cpu_devices: split the CPU into this many logical devices (must run before TensorFlow starts).
        deterministic: `enable_op_determinism`; None: wherever XLA is off (`xla_and_determinism`). On a GPU
            machine, bag-of-words models then run on the CPU (`CPU_ON_GPU_MACHINES`).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}. Allowed: {list(STRATEGIES)}.")
    if dtype_policy not in DTYPE_POLICIES:
        raise ValueError(f"Unknown dtype policy {dtype_policy!r}. Allowed: {list(DTYPE_POLICIES)} (pure float16 and "
                         "bfloat16 keep the variables in 16 bits, where small updates round away).")
    if logical_cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(logical_cpu_devices))])
    jit_compile, deterministic = xla_and_determinism(jit_compile, deterministic, family, has_gpu())
    gpus = _usable_gpus(family, deterministic)
    keras.utils.set_random_seed(seed)
    compat.set_op_determinism(deterministic)
    device = f"{len(gpus)} GPU" if gpus else f"CPU ({os.cpu_count()} cores)"
    if dtype_policy == "auto":
        if gpus:
            dtype_policy = "mixed_float16"
        elif family == "transformer" and cpu_has_bf16():
            dtype_policy = "mixed_bfloat16"
        else:
            dtype_policy = "float32"
    keras.mixed_precision.set_dtype_policy(dtype_policy)
    if strategy == "mirrored":
        devices = None
        if not gpus:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        distribution = tf.distribute.MirroredStrategy(devices=devices)
    elif strategy == "multi_worker":
        distribution = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = distribution.cluster_resolver
        task = (resolver.task_type, resolver.task_id)
        chief = is_chief(*task, resolver.cluster_spec().as_dict())
        device = f"{device}, task {task[0]} {task[1]} of {len(resolver.cluster_spec().as_dict().get('worker', []))}"
    elif strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        distribution = tf.distribute.TPUStrategy(resolver)
        device = "TPU"
    else:
        distribution = tf.distribute.get_strategy()
    if strategy != "multi_worker":
        task, chief = (None, None), True
    return Runtime(distribution, dtype_policy, jit_compile, device, seed, task, chief, deterministic)
