"""PyTorch autograd reference gradients for checking our ONNX reverse pass.

Run from the repository root:   /usr/bin/python3 scripts/torch_reference_grads.py
(Debian's python3 with python3-torch 1.13 and python3-onnx 1.12; takes a few seconds; deterministic:
fixed seeds, one thread, so a re-run rewrites byte-identical files.)

It writes, under test/fixtures/torch/:
- builder-tiny/config.json + model.safetensors: a seeded tiny BERT classifier (vocab 120, hidden 32,
  2 layers, 4 heads, intermediate 64, 64 positions, 2 token types, 3 labels, pooler, LayerNorm eps
  1e-12, gelu; LayerNorm weights/biases perturbed away from 1/0) as a Hugging Face config + weights
  (HF names, `bert.` prefix, F32), for the ONNX builder to build from;
- builder-tiny-regression/config.json + model.safetensors: the same encoder with a 1-output
  regression head (problem_type "regression");
- grads-torch113-eval.json      model rebuilt from ../shared/fixtures/onnx/torch113/tiny_bert_torch113.onnx
- grads-torch113-training.json  model rebuilt from tiny_bert_torch113_training.onnx (same weights)
- grads-builder-tiny.json, grads-builder-tiny-regression.json
- grads-torch113.safetensors, grads-builder-tiny.safetensors, grads-builder-tiny-regression.safetensors:
  the float64 gradient of every parameter but the word embedding (rounded to F32), HF names, for tests
  of other selections.

Each JSON holds the batch (input_ids, attention_mask, token_type_ids, labels), and for a float64 run
(the reference to compare against) and a float32 run: loss, logits and the gradients of every
LayerNorm, bias, pooler and classifier parameter, the token-type embedding and the word-embedding rows
the batch touches. Dropout is off; the loss is Hugging Face's (mean cross-entropy, or mean squared
error for the 1-output head). Before any gradient, the rebuilt torch113 models must reproduce
tiny_bert_torch113.expected.json's logits to 1e-5 (asserted), and the float32 gradients must be within
the tolerance the fixtures advertise of the float64 ones (asserted).
"""
import os

# One BLAS/OpenMP thread: reductions then run in a fixed order and re-runs are bit-identical.
os.environ['OPENBLAS_NUM_THREADS'] = '1'
os.environ['OMP_NUM_THREADS'] = '1'

import json
import struct
import sys

sys.dont_write_bytecode = True  # importing bert_torch must not leave __pycache__ in scripts/
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from bert_torch import BertForSequenceClassification, BertShape, hf_loss

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / 'shared'
TORCH113 = SHARED / 'fixtures/onnx/torch113'
OUT = ROOT / 'test/fixtures/torch'

REL_TOLERANCE = 1e-4
ABS_FLOOR = 1e-7
COMPARE_RULE = ('per gradient tensor: max_i |got_i - ref_i| <= relTolerance * max_i |ref_i| + absFloor, '
                'ref = the float64 values')

# The torch113 fixtures' architecture (see export_tiny_bert.py beside them).
TORCH113_SHAPE = BertShape(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, num_labels=2)
BUILDER_SHAPE = BertShape(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, num_labels=3)
BUILDER_INIT_STD = 0.05

# Batch for the torch113 models: padding in two rows, a second segment in the last.
TORCH113_BATCH = {
    'input_ids': [[101, 7, 8, 9, 10, 102, 0], [101, 15, 16, 102, 0, 0, 0], [101, 21, 22, 102, 23, 24, 102]],
    'attention_mask': [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]],
    'token_type_ids': [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]],
    'labels': [1, 0, 1],
}
# Batch for the builder models ([CLS]=2, [SEP]=3, [PAD]=0): sentence pairs, padding in three rows.
BUILDER_BATCH = {
    'input_ids': [[2, 11, 12, 13, 3, 21, 22, 3], [2, 14, 15, 3, 31, 3, 0, 0],
                  [2, 40, 41, 42, 43, 3, 0, 0], [2, 50, 3, 60, 61, 62, 3, 0]],
    'attention_mask': [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0],
                       [1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 0]],
    'token_type_ids': [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0, 0],
                       [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 0]],
    'labels': [0, 2, 1, 2],
}
REGRESSION_LABELS = [0.5, -1.25, 2.0, 0.75]

WORD_EMBEDDINGS = 'bert.embeddings.word_embeddings.weight'


# ---------------------------------------------------------------- weights from the ONNX exports

def onnx_weights(path: Path):
    """HF-named float32 arrays (HF layout) from a torch.onnx export, and where each came from.

    Named initializers are taken by name. The eval export stores Linear weights pre-transposed under
    anonymous names (`onnx::MatMul_336`); each is named after the MatMul that consumes it
    (`/bert/encoder/layer.0/attention/self/query/MatMul` → `bert.encoder.layer.0.attention.self.query.weight`).
    """
    model = onnx.load(str(path))
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights, origin = {}, {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if init.name == 'bert.embeddings.position_ids':
            continue  # a buffer, not a parameter
        if init.name.startswith('onnx::'):
            users = consumers.get(init.name, [])
            assert len(users) == 1 and users[0].op_type == 'MatMul' and users[0].name.endswith('/MatMul'), \
                f'{path.name}: {init.name} is not consumed by exactly one scoped MatMul'
            hf = users[0].name.strip('/')[:-len('/MatMul')].replace('/', '.') + '.weight'
            assert hf not in weights, f'{path.name}: two initializers for {hf}'
            weights[hf] = np.ascontiguousarray(array.T)
            origin[hf] = {'name': init.name, 'transposed': True}
        else:
            weights[init.name] = array
            origin[init.name] = {'name': init.name, 'transposed': False}
    return weights, origin


def load_model(shape: BertShape, weights) -> BertForSequenceClassification:
    model = BertForSequenceClassification(shape)
    state = model.state_dict()
    assert set(state) == set(weights), f'weights mismatch: missing {set(state) - set(weights)}, extra {set(weights) - set(state)}'
    for name, array in weights.items():
        assert tuple(state[name].shape) == array.shape, f'{name}: shape {array.shape}, expected {tuple(state[name].shape)}'
    model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items()})
    return model.eval()


def check_expected_logits(model, label: str):
    """The rebuilt model must give the logits recorded beside the exports (float32, to 1e-5)."""
    expected = json.loads((TORCH113 / 'tiny_bert_torch113.expected.json').read_text())
    with torch.no_grad():
        logits = model(torch.tensor(expected['input_ids']), torch.tensor(expected['attention_mask']),
                       torch.tensor(expected['token_type_ids']))
    diff = float((logits.double() - torch.tensor(expected['expected_logits'], dtype=torch.float64)).abs().max())
    assert diff <= 1e-5, f'{label}: logits differ from tiny_bert_torch113.expected.json by {diff}'
    print(f'{label}: reproduces tiny_bert_torch113.expected.json logits (max |diff| {diff:.2e})')
    return diff


# ---------------------------------------------------------------- the builder-style model

def builder_weights(shape: BertShape, seed: int):
    """Seeded weights: N(0, BUILDER_INIT_STD) matrices/embeddings, small random biases, LayerNorm
    weights 1 + N(0, 0.1) and biases N(0, 0.1) so no LayerNorm parameter is the default 1/0."""
    gen = torch.Generator().manual_seed(seed)
    model = BertForSequenceClassification(shape)
    out = {}
    for name, p in model.state_dict().items():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if 'LayerNorm.weight' in name:
            value = 1.0 + 0.1 * noise
        elif 'LayerNorm.bias' in name:
            value = 0.1 * noise
        elif name.endswith('.bias'):
            value = 0.02 * noise
        else:
            value = BUILDER_INIT_STD * noise
        out[name] = value.numpy()
    return out


def write_safetensors(path: Path, tensors, metadata):
    """safetensors: u64 little-endian header size, JSON header (dtype, shape, data_offsets into the
    data section; header padded with spaces to 8 bytes), then the raw little-endian data."""
    header, blobs, offset = {'__metadata__': metadata}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype='<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def read_safetensors(path: Path):
    """Reads back what write_safetensors wrote (to check the files round-trip)."""
    raw = path.read_bytes()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop('__metadata__', None)
    data = raw[8 + n:]
    return {k: np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype='<f4').reshape(v['shape'])
            for k, v in header.items()}


# ---------------------------------------------------------------- gradients

def run(model, batch, labels, dtype):
    """Loss, logits and every parameter's gradient with the model cast to `dtype`, dropout off."""
    m = BertForSequenceClassification(model.shape)
    m.load_state_dict(model.state_dict())
    m = m.to(dtype).eval()
    logits = m(torch.tensor(batch['input_ids']), torch.tensor(batch['attention_mask']),
               torch.tensor(batch['token_type_ids']))
    loss = hf_loss(logits, torch.tensor(labels))
    loss.backward()
    grads = {n: p.grad.detach().to(torch.float64).numpy().copy() for n, p in m.named_parameters()}
    return float(loss), logits.detach().to(torch.float64).numpy(), grads


def recorded(name: str) -> bool:
    """Gradients written to the JSON (the rest are in the companion safetensors)."""
    return ('LayerNorm' in name or name.endswith('.bias') or name.startswith('bert.pooler.')
            or name.startswith('classifier.') or name == 'bert.embeddings.token_type_embeddings.weight'
            or name == WORD_EMBEDDINGS)


def as_float32_list(values):
    # Shortest decimal that round-trips the float32 (Math.fround in JS gives the same value back).
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32).ravel()]


def section(loss, logits, grads, rows, precision):
    to_list = (lambda a: [float(v) for v in np.asarray(a).ravel()]) if precision == 'float64' else as_float32_list
    out = {'loss': to_list([loss])[0], 'logits': [to_list(r) for r in logits], 'gradients': {}}
    for name in sorted(grads):
        if not recorded(name):
            continue
        g = grads[name]
        entry = {'shape': list(g.shape)}
        if name == WORD_EMBEDDINGS:
            entry['rows'] = rows
            g = g[rows]
        entry['values'] = to_list(g)
        out['gradients'][name] = entry
    return out


def relative_error(got, ref):
    """COMPARE_RULE as one number: the rule holds when this is <= REL_TOLERANCE."""
    return float(np.abs(got - ref).max() / (np.abs(ref).max() + ABS_FLOOR / REL_TOLERANCE))


def reference(model, batch, labels, task, source, extra=None):
    """Both precisions, the float32-vs-float64 check, and the JSON document."""
    loss64, logits64, grads64 = run(model, batch, labels, torch.float64)
    loss32, logits32, grads32 = run(model, batch, labels, torch.float32)
    worst = max(grads64, key=lambda n: relative_error(grads32[n], grads64[n]))
    worst_err = relative_error(grads32[worst], grads64[worst])
    assert worst_err <= REL_TOLERANCE, f'float32 gradient of {worst} is {worst_err:.2e} from float64: tolerance too tight'
    rows = sorted({i for seq in batch['input_ids'] for i in seq})
    shape = model.shape
    doc = {
        'about': 'PyTorch autograd gradients for checking the ONNX reverse pass; '
                 'made by scripts/torch_reference_grads.py (do not edit by hand)',
        'torch': torch.__version__,
        'source': source,
        'config': {'vocabSize': shape.vocab_size, 'hiddenSize': shape.hidden_size,
                   'numHiddenLayers': shape.num_hidden_layers, 'numAttentionHeads': shape.num_attention_heads,
                   'intermediateSize': shape.intermediate_size, 'maxPositionEmbeddings': shape.max_position_embeddings,
                   'typeVocabSize': shape.type_vocab_size, 'layerNormEps': shape.layer_norm_eps,
                   'hiddenAct': shape.hidden_act, 'numLabels': shape.num_labels},
        'task': task,
        'loss': 'mean squared error over the batch (logits[:, 0] vs labels)' if task == 'regression'
                else 'mean softmax cross-entropy over the batch',
        'dropout': 'off (every Dropout is identity)',
        'compare': {'dtype': 'float64', 'relTolerance': REL_TOLERANCE, 'absFloor': ABS_FLOOR, 'rule': COMPARE_RULE},
        'inputs': {k: batch[k] for k in ('input_ids', 'attention_mask', 'token_type_ids')} | {'labels': labels},
        'notes': [
            'gradients are keyed by Hugging Face name and laid out as Hugging Face stores the parameter '
            '(Linear weight [out, in]); values are the tensor flattened row-major',
            f'{WORD_EMBEDDINGS}: only the rows listed in "rows" (the ids in the batch, [PAD] included), '
            'values = those rows in that order; the word embedding has no padding_idx, so the [PAD] row '
            'gets the gradient a plain Gather gives',
            'the attention key biases have a zero gradient mathematically (softmax ignores a shift shared '
            'by all keys); their values here are rounding noise, which the absolute floor covers',
            'the gradients of all parameters but the word embedding (whose touched rows are here) are in the '
            'safetensors file named by "allGradients", beside this file (float64 values rounded to F32)',
        ],
    }
    if extra:
        doc.update(extra)
    doc['float64'] = section(loss64, logits64, grads64, rows, 'float64')
    doc['float32'] = section(loss32, logits32, grads32, rows, 'float32')
    doc['float32VsFloat64'] = {'worstTensor': worst, 'relError': worst_err}
    return doc, grads64


def to_json(value, indent=0):
    """Objects one key a line, arrays of numbers (and of such arrays) on one line: readable and small."""
    pad = ' ' * (indent + 1)
    if isinstance(value, dict) and not any(isinstance(v, (dict, list)) for v in value.values()):
        return json.dumps(value, separators=(', ', ': '))
    if isinstance(value, dict):
        items = [f'{pad}{json.dumps(k)}: {to_json(v, indent + 1)}' for k, v in value.items()]
        return '{\n' + ',\n'.join(items) + '\n' + ' ' * indent + '}' if items else '{}'
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return '[\n' + ',\n'.join(pad + to_json(v, indent + 1) for v in value) + '\n' + ' ' * indent + ']'
    if isinstance(value, list) and any(isinstance(v, str) for v in value):
        return '[\n' + ',\n'.join(pad + json.dumps(v) for v in value) + '\n' + ' ' * indent + ']'
    return json.dumps(value, separators=(',', ':'))


def write_json(name: str, doc):
    path = OUT / name
    text = to_json(doc) + '\n'
    assert json.loads(text) == doc
    path.write_text(text)
    print(f'wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)')


def write_grads_safetensors(name: str, grads, source: str):
    path = OUT / name
    grads = {k: v for k, v in grads.items() if k != WORD_EMBEDDINGS}
    write_safetensors(path, {k: v.astype(np.float32) for k, v in grads.items()},
                      {'about': 'float64 PyTorch gradients rounded to float32', 'source': source,
                       'generator': 'scripts/torch_reference_grads.py'})
    back = read_safetensors(path)
    assert all(np.array_equal(back[k], grads[k].astype(np.float32)) for k in grads)
    print(f'wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)')


# ---------------------------------------------------------------- main

def torch113_fixtures():
    eval_w, eval_origin = onnx_weights(TORCH113 / 'tiny_bert_torch113.onnx')
    train_w, train_origin = onnx_weights(TORCH113 / 'tiny_bert_torch113_training.onnx')
    # Cross-check the name given to each anonymous MatMul weight by value against the training export.
    assert set(eval_w) == set(train_w)
    for name in eval_w:
        assert np.array_equal(eval_w[name], train_w[name]), f'{name} differs between the two exports'
    print('eval export: every onnx::MatMul_N matches (transposed) the training export weight named by its MatMul')

    grads_by_file = {}
    for weights, origin, file, out in [
        (eval_w, eval_origin, 'tiny_bert_torch113.onnx', 'grads-torch113-eval.json'),
        (train_w, train_origin, 'tiny_bert_torch113_training.onnx', 'grads-torch113-training.json'),
    ]:
        model = load_model(TORCH113_SHAPE, weights)
        diff = check_expected_logits(model, file)
        extra = {'onnxInitializers': origin, 'expectedLogitsMaxDiff': diff, 'allGradients': 'grads-torch113.safetensors'}
        if 'training' in file:
            extra['dropout'] = ('off: this export has Dropout nodes (ratio 0.1, training_mode true); '
                                'the gradients are for all of them made identity')
        doc, grads = reference(model, TORCH113_BATCH, TORCH113_BATCH['labels'], 'classification',
                               {'kind': 'onnx', 'file': f'fixtures/onnx/torch113/{file}', 'root': '../shared'}, extra)
        write_json(out, doc)
        grads_by_file[file] = grads
    a, b = grads_by_file.values()
    assert all(np.array_equal(a[k], b[k]) for k in a), 'the two exports hold the same weights: gradients must agree'
    write_grads_safetensors('grads-torch113.safetensors', a, 'tiny_bert_torch113.onnx and tiny_bert_torch113_training.onnx')


def builder_fixtures():
    weights = builder_weights(BUILDER_SHAPE, seed=1234)
    reg_shape = BertShape(**{**BUILDER_SHAPE.__dict__, 'num_labels': 1})
    reg_weights = dict(weights)
    head = builder_weights(reg_shape, seed=4321)  # only its classifier is used
    reg_weights['classifier.weight'] = head['classifier.weight']
    reg_weights['classifier.bias'] = head['classifier.bias']

    for shape, w, folder, problem, labels, task, out in [
        (BUILDER_SHAPE, weights, 'builder-tiny', None, BUILDER_BATCH['labels'], 'classification', 'grads-builder-tiny'),
        (reg_shape, reg_weights, 'builder-tiny-regression', 'regression', REGRESSION_LABELS, 'regression',
         'grads-builder-tiny-regression'),
    ]:
        config_path = OUT / folder / 'config.json'
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(shape.hf_config(BUILDER_INIT_STD, problem), indent=2, sort_keys=True) + '\n')
        weights_path = OUT / folder / 'model.safetensors'
        write_safetensors(weights_path, w, {'format': 'pt'})
        back = read_safetensors(weights_path)
        assert set(back) == set(w) and all(np.array_equal(back[k], w[k]) for k in w)
        print(f'wrote {config_path.relative_to(ROOT)}, {weights_path.relative_to(ROOT)} '
              f'({weights_path.stat().st_size // 1024} KiB)')
        model = load_model(shape, back)
        source = {'kind': 'builder', 'config': f'test/fixtures/torch/{folder}/config.json',
                  'weights': f'test/fixtures/torch/{folder}/model.safetensors', 'root': '.'}
        doc, grads = reference(model, BUILDER_BATCH, labels, task, source, {'allGradients': out + '.safetensors'})
        write_json(out + '.json', doc)
        write_grads_safetensors(out + '.safetensors', grads, f'test/fixtures/torch/{folder}')


if __name__ == '__main__':
    assert sys.version_info >= (3, 9)
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    torch113_fixtures()
    builder_fixtures()
