"""MPNet's WordPiece tokenizer and its classifier preprocessor. Its vocabulary is bert-base-uncased's behind four
tokens of its own, with <s> and </s> as CLS and SEP, <pad> as padding."""

import keras
import keras_hub

from zoo import compat
from zoo.backbones.bert_tokenizer import HuggingFaceNormalization

@keras.saving.register_keras_serializable(package="textzoo")
class MPNetTokenizer(HuggingFaceNormalization, keras_hub.tokenizers.WordPieceTokenizer):
    """MPNet's WordPiece tokenizer: Hugging Face's text normalization (`basic_normalize`), <s> and </s> as
    CLS and SEP, <pad> as padding, [UNK] for what the vocabulary lacks (as Hugging Face's MPNetTokenizer).

    Args:
        vocabulary: a vocabulary file or list.
        lowercase: bool. Whether the vocabulary is uncased (Hugging Face's `do_lower_case`).
        strip_accents: bool or None. Hugging Face's `strip_accents`; None: as `lowercase`.
    """

    def __init__(self, vocabulary=None, lowercase=True, strip_accents=None, **kwargs):
        for token, role in (("<s>", "cls_token"), ("</s>", "sep_token"), ("<pad>", "pad_token"),
                            ("<mask>", "mask_token"), ("<s>", "start_token"), ("</s>", "end_token")):
            compat.add_special_token(self, token, role)
        kwargs = {"oov_token": "[UNK]", **kwargs, "lowercase": False, "strip_accents": False}
        super().__init__(vocabulary=vocabulary, **kwargs)
        self.normalize_as_hugging_face(lowercase, strip_accents)


@keras.saving.register_keras_serializable(package="textzoo")
class MPNetTextClassifierPreprocessor(keras_hub.models.BertTextClassifierPreprocessor):
    """keras-hub's BERT classifier preprocessor (one segment: <s> text </s>, padded with <pad>; truncated as
    `transformer.TRUNCATE`) with MPNet's tokenizer, and no segment ids (MPNet has no segment embeddings)."""

    def call(self, x, y=None, sample_weight=None):
        outputs = super().call(x, y, sample_weight)
        if isinstance(outputs, tuple):
            return ({k: v for k, v in outputs[0].items() if k != "segment_ids"},) + outputs[1:]
        return {k: v for k, v in outputs.items() if k != "segment_ids"}
