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
import pathlib
import sys

import numpy as np
import torch
import transformers

# tests/test_transformer_parity.py's texts (it checks the file was computed on them).
TEXTS = json.loads((pathlib.Path(__file__).with_name("parity_texts.json")).read_text(encoding="utf-8"))


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
