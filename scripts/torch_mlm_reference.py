"""PyTorch reference for masked-LM logits: loads a Hugging Face-style BertForMaskedLM folder
(config.json + model.safetensors, as `modtune pretrain` writes it) into a plain-PyTorch BERT with
Hugging Face's prediction head (dense → activation → LayerNorm → decoder tied to the word
embeddings + vocabulary bias), runs fixed inputs in float64, and writes what the logits must be.
The test suite (no Python) builds the same folder with modtune's ONNX builder and compares.

Run from the repository root with Debian's python3-torch 1.13:

    /usr/bin/python3 scripts/torch_mlm_reference.py --make-fixture test/fixtures/torch/mlm-tiny
    /usr/bin/python3 scripts/torch_mlm_reference.py models/bert-mini-wikibooks

Each writes `<folder>/mlm-reference.json`: the inputs (two rows, the second padded), and for a few
positions the logits of the first 64 vocabulary entries, the 10 largest logits with their ids, and
the log-sum-exp over the whole vocabulary (so every entry counts). Deterministic: a re-run rewrites
the same file.
"""
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).parent))
from bert_torch import BertShape, Embeddings, Encoder, activation  # noqa: E402

POSITIONS = [(0, 1), (0, 5), (0, 9), (1, 2), (1, 4), (1, 6)]


def read_safetensors(path: Path):
    raw = path.read_bytes()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop('__metadata__', None)
    data = raw[8 + n:]
    dtypes = {'F32': '<f4', 'F16': '<f2', 'BF16': None}
    out = {}
    for k, v in header.items():
        buf = data[v['data_offsets'][0]:v['data_offsets'][1]]
        if v['dtype'] == 'BF16':
            u = np.frombuffer(buf, dtype='<u2').astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=dtypes[v['dtype']]).astype(np.float32)
        out[k] = arr.reshape(v['shape'])
    return out


def write_safetensors(path: Path, tensors):
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype='<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    path.write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


class Bert(nn.Module):
    """BertModel without the pooler (BertForMaskedLM builds none)."""

    def __init__(self, c: BertShape):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        dtype = self.embeddings.word_embeddings.weight.dtype
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(torch.float32).min
        return self.encoder(self.embeddings(input_ids, token_type_ids), mask_bias)


class Transform(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.transform_act_fn = activation(c.hidden_act)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.transform_act_fn(self.dense(x)))


class Predictions(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.transform = Transform(c)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))


class Cls(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.predictions = Predictions(c)


class BertForMaskedLM(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.bert = Bert(c)
        self.cls = Cls(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.cls.predictions.transform(self.bert(input_ids, attention_mask, token_type_ids))
        # The decoder is tied to the word embeddings (Hugging Face's tie_word_embeddings).
        return h @ self.bert.embeddings.word_embeddings.weight.T + self.cls.predictions.bias


def shape_of(cfg) -> BertShape:
    return BertShape(
        vocab_size=cfg['vocab_size'], hidden_size=cfg['hidden_size'], num_hidden_layers=cfg['num_hidden_layers'],
        num_attention_heads=cfg['num_attention_heads'], intermediate_size=cfg['intermediate_size'],
        max_position_embeddings=cfg['max_position_embeddings'], type_vocab_size=cfg.get('type_vocab_size', 2),
        layer_norm_eps=cfg.get('layer_norm_eps', 1e-12), hidden_act=cfg.get('hidden_act', 'gelu'), num_labels=2,
        pad_token_id=cfg.get('pad_token_id', 0))


def make_fixture(folder: Path):
    """A seeded tiny BertForMaskedLM: vocab 120, hidden 32, 2 layers, 4 heads, LayerNorms perturbed."""
    shape = BertShape(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=64)
    torch.manual_seed(20261206)
    model = BertForMaskedLM(shape)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.1 if 'LayerNorm' in name or name.endswith('bias') else 0.05) + (1.0 if name.endswith('LayerNorm.weight') else 0.0))
    folder.mkdir(parents=True, exist_ok=True)
    cfg = shape.hf_config()
    cfg['architectures'] = ['BertForMaskedLM']
    for k in ('id2label', 'label2id'):
        cfg.pop(k)
    (folder / 'config.json').write_text(json.dumps(cfg, indent=2, sort_keys=True) + '\n')
    write_safetensors(folder / 'model.safetensors', {k: v.detach().numpy() for k, v in model.state_dict().items()})


def reference(folder: Path):
    cfg = json.loads((folder / 'config.json').read_text())
    shape = shape_of(cfg)
    model = BertForMaskedLM(shape)
    weights = read_safetensors(folder / 'model.safetensors')
    state = {k: torch.tensor(weights[k]) for k in model.state_dict()}
    model.load_state_dict(state)
    model = model.to(torch.float64).eval()
    rng = np.random.default_rng(7)
    V = shape.vocab_size
    S = 12
    ids = rng.integers(low=min(999, V // 2), high=V, size=(2, S))
    ids[:, 0] = 101 if V > 103 else 1
    ids[:, 5] = 103 if V > 103 else 4  # a [MASK]
    mask = np.ones((2, S), dtype=np.int64)
    mask[1, 8:] = 0
    ids[1, 8:] = 0
    types = np.zeros((2, S), dtype=np.int64)
    with torch.no_grad():
        logits = model(torch.tensor(ids), torch.tensor(mask), torch.tensor(types)).numpy()
    rows = []
    for r, s in POSITIONS:
        row = logits[r, s]
        top = np.argsort(-row)[:10]
        m = row.max()
        rows.append({'row': r, 'position': s, 'first64': [float(x) for x in row[:64]],
                     'top': [{'id': int(i), 'logit': float(row[i])} for i in top],
                     'logsumexp': float(m + math.log(np.exp(row - m).sum()))})
    doc = {'source': 'scripts/torch_mlm_reference.py (PyTorch %s, float64)' % torch.__version__,
           'input_ids': ids.tolist(), 'attention_mask': mask.tolist(), 'token_type_ids': types.tolist(), 'positions': rows}
    (folder / 'mlm-reference.json').write_text(json.dumps(doc, indent=1) + '\n')
    print(f'{folder}/mlm-reference.json: {len(rows)} positions, vocab {V}')


def main(argv):
    if len(argv) == 3 and argv[1] == '--make-fixture':
        folder = Path(argv[2])
        make_fixture(folder)
        reference(folder)
    elif len(argv) == 2:
        reference(Path(argv[1]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == '__main__':
    torch.set_num_threads(1)
    main(sys.argv)
