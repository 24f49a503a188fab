"""Runtime set-up: seed, devices, the dtype policy (bfloat16 where the CPU has it), XLA and tf.distribute."""

import dataclasses
import os
import pathlib

import keras
import tensorflow as tf

import zoo

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
DTYPE_POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16", "bfloat16", "float16")


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


def cpu_has_bf16():
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX), where mixed_bfloat16 pays off."""
    flags = cpu_info()["flags"]
    return flags["avx512_bf16"] or flags["amx_bf16"]


def onednn_off():
    """Whether TF_ENABLE_ONEDNN_OPTS turns oneDNN's kernels and graph fusions off (0 or false; TensorFlow reads it
    at import). Unset, x86 Linux builds run them."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("0", "false")


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

    def record(self):
        return {"strategy": type(self.strategy).__name__, "replicas": self.strategy.num_replicas_in_sync,
                "dtype_policy": self.dtype_policy, "jit_compile": self.jit_compile, "device": self.device,
                "seed": self.seed, **({"task": list(self.task)} if self.task[0] else {})}


def is_chief(task_type, task_id, cluster_spec=None):
    """The tf.distribute convention: the "chief" task, or worker 0 of a cluster without one."""
    if task_type is None or task_type == "chief":
        return True
    has_chief = bool(cluster_spec) and "chief" in cluster_spec
    return task_type == "worker" and task_id == 0 and not has_chief


def configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="auto", jit_compile=None, strategy="default",
                      family="transformer", logical_cpu_devices=None, tpu_address=None, deterministic=True):
    """Seeds everything and picks devices, dtype policy, XLA and the distribution strategy.

    Args:
        dtype_policy: "auto" is mixed_float16 on a GPU, mixed_bfloat16 for transformers on a CPU with native
            bfloat16, float32 otherwise; or any Keras policy name.
        jit_compile: None for "on where a GPU is present" (XLA was slower than plain TF on CPUs here).
        strategy: "default", "mirrored" (all local GPUs, or logical CPUs), "multi_worker" (TF_CONFIG), "tpu".
        logical_cpu_devices: split the CPU into this many logical devices (must run before TensorFlow starts).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}. Allowed: {list(STRATEGIES)}.")
    if dtype_policy not in DTYPE_POLICIES:
        raise ValueError(f"Unknown dtype policy {dtype_policy!r}. Allowed: {list(DTYPE_POLICIES)}.")
    if logical_cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(logical_cpu_devices))])
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU" if gpus else f"CPU ({os.cpu_count()} cores)"
    if dtype_policy == "auto":
        if gpus:
            dtype_policy = "mixed_float16"
        elif family == "transformer" and cpu_has_bf16():
            dtype_policy = "mixed_bfloat16"
        else:
            dtype_policy = "float32"
    keras.mixed_precision.set_dtype_policy(dtype_policy)
    if jit_compile is None:
        jit_compile = bool(gpus)
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
    return Runtime(distribution, dtype_policy, bool(jit_compile), device, seed, task, chief)
