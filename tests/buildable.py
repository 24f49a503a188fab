"""The registered backbones the per-backbone tests run on.

Every registered backbone is tested, a new one included, wherever it can be built: its pretrained weights are found
here, or it is randomly initialised by default where they are not (bert_base). One whose weights are only on a hub
this machine cannot reach (bert_small: keras-hub's preset on Kaggle) is reported as skipped, with the reason;
its code is the class another name runs (`Bert`, tested through minilm_l6).
"""

import functools

import pytest

from zoo import backbones


@functools.cache
def _missing(name):
    if backbones.default_options(name).get("random_init") == "auto":
        return None
    return backbones.missing_weights(name)


def names():
    """The registered backbones that build here."""
    return [name for name in backbones.names() if _missing(name) is None]


def params():
    """Every registered backbone as a pytest parameter; those that cannot be built here are skipped, saying why."""
    return [pytest.param(name, marks=pytest.mark.skip(reason=_missing(name)) if _missing(name) else ())
            for name in backbones.names()]
