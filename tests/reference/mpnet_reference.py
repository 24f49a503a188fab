"""Reference outputs of all-mpnet-base-v2 from Hugging Face transformers, for tests/test_transformer_parity.py.

Run in an environment of its own (torch and transformers are not the project's dependencies), on the checkpoint
directory the zoo resolves (`python -c "from zoo import pretrained; print(pretrained.resolve_mpnet('mpnet_base')[0])"`):

    python -m venv /tmp/hf && /tmp/hf/bin/pip install torch transformers safetensors numpy
    /tmp/hf/bin/python tests/reference/mpnet_reference.py CHECKPOINT_DIR tests/reference/mpnet_base.npz

It writes, for every text of TEXTS: the token ids of Hugging Face's MPNetTokenizer (fast, as sentence-transformers
loads it), the last hidden states of MPNetModel on them, and sentence-transformers' mean pooling (the mean of the
hidden states over the attention mask), all float32, with the library versions.
"""

import json
import sys

import numpy as np
import torch
import transformers

# tests/test_transformer_parity.py's texts (it reads them from the file, and checks they are its own).
TEXTS = [
    "The striker scored twice in the second half.",
    "Café crème brûlée, naïve façade — Œuvre",
    "中文文本 and 日本語のテキスト, 한국어",
    "emoji 😀🎉 here 👍🏽",
    "",
    "   \t\n ",
    "pneumonoultramicroscopicsilicovolcanoconiosis " + "a" * 120,
    "Shares ROSE 3.5% after Q3 results; U.S. markets (NYSE) were up!",
    # Where keras-hub's own normalization (NFKC case folding after accent stripping) differed from Hugging Face's.
    "Œuvre ß ǅ İstanbul ﬁ ２０２０ 한국어",
    "zero\u200dwidth joiner, soft\u00adhyphen, nul\x00and bell\x07, tab\tand\u00a0no-break\u3000space",
    "long " * 300,  # Cut at the sequence length, as the reference truncates.
]


def main(checkpoint, out):
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    model = transformers.MPNetModel.from_pretrained(checkpoint).eval()
    ids, hidden, pooled = [], [], []
    with torch.no_grad():
        for text in TEXTS:
            encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
            states = model(**encoded).last_hidden_state[0]
            ids.append(encoded["input_ids"][0].numpy().astype(np.int32))
            hidden.append(states.numpy().astype(np.float32))
            pooled.append(states.mean(axis=0).numpy().astype(np.float32))  # One text: every position is real.
    np.savez_compressed(
        out, texts=json.dumps(TEXTS, ensure_ascii=False), lengths=np.array([len(i) for i in ids]),
        token_ids=np.concatenate(ids), hidden=np.concatenate(hidden), pooled=np.stack(pooled),
        versions=json.dumps({"torch": torch.__version__, "transformers": transformers.__version__}))
    print(f"Wrote {out}: {len(TEXTS)} texts, {sum(len(i) for i in ids)} tokens.")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
