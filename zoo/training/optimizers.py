"""Optimizers: AdamW with BERT's linear warm-up and decay, Adam, both with TensorFlow's fused update."""


import keras

from zoo import compat

@keras.saving.register_keras_serializable(package="textzoo")
class LinearWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's schedule: linear warm-up to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    Keras has cosine decay with warm-up but no linear decay with warm-up, which BERT fine-tuning uses.
    """

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay = self.peak * keras.ops.maximum(0.0, (self.total_steps - step)
                                              / max(self.total_steps - self.warmup_steps, 1))
        return keras.ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="textzoo")
class Adam(compat.FusedAdamUpdate, keras.optimizers.Adam):
    """keras.optimizers.Adam with TensorFlow's fused update (`compat.FusedAdamUpdate`)."""


@keras.saving.register_keras_serializable(package="textzoo")
class AdamW(compat.FusedAdamUpdate, keras.optimizers.AdamW):
    """keras.optimizers.AdamW with TensorFlow's fused update (`compat.FusedAdamUpdate`); the decoupled weight decay
    is Keras'."""


def make_optimizer(family, learning_rate, total_steps, warmup_fraction=0.0, weight_decay=0.0):
    """AdamW with linear warm-up and decay for transformers (as BERT); Adam for the others."""
    if family == "transformer":
        schedule = LinearWarmupLinearDecay(learning_rate, round(warmup_fraction * total_steps), total_steps)
        optimizer = AdamW(learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6, global_clipnorm=1.0)
        # As in BERT: no decay on biases and LayerNorm parameters.
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer
    if weight_decay:
        return AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    return Adam(learning_rate=learning_rate)
