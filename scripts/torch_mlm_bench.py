"""PyTorch baseline for the pre-training benchmark (bench/pretrain.bench.ts): the same masked-LM
training step as `modtune pretrain` — a fresh bert-mini (vocab 30522, 4 layers, hidden 256), every
parameter trained, the decoder tied to the word embeddings, the vocabulary projection only on the
masked 15% of the tokens (gathered first), mean cross-entropy, clip_grad_norm_(1.0), AdamW
(weight decay 0.01 except biases and LayerNorm weights). Prints one JSON line.

    /usr/bin/python3 scripts/torch_mlm_bench.py '{"batch": 32, "seq": 128, "steps": 8, "threads": 2, "dropout": 0.1}'

Debian's python3-torch 1.13; `torch.set_num_threads(threads)`.
"""
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from bert_torch import BertShape  # noqa: E402
from torch_mlm_reference import BertForMaskedLM  # noqa: E402


def main(cfg):
    torch.manual_seed(0)
    torch.set_num_threads(cfg.get('threads', 2))
    d = cfg.get('dropout', 0.1)
    shape = BertShape(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                      hidden_dropout_prob=d, attention_probs_dropout_prob=d)
    model = BertForMaskedLM(shape).train()
    with torch.no_grad():  # BERT's initialisation, as modtune's builder: normal(0, 0.02), zero biases, LayerNorm 1/0
        for n, p in model.named_parameters():
            if 'LayerNorm' in n:
                p.fill_(1.0 if n.endswith('weight') else 0.0)
            elif n.endswith('bias'):
                p.zero_()
            else:
                p.normal_(0.0, 0.02)
    decay = [p for n, p in model.named_parameters() if not (n.endswith('bias') or 'LayerNorm' in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith('bias') or 'LayerNorm' in n]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}], lr=5e-4)
    B, S = cfg['batch'], cfg['seq']
    n_mask = round(0.15 * (S - 2))
    times, loss = [], float('nan')
    for _ in range(cfg.get('steps', 8)):
        ids = torch.randint(1000, 30000, (B, S))
        positions = torch.stack([torch.randperm(S - 2)[:n_mask] + 1 for _ in range(B)]).sort(dim=1).values
        flat = (positions + torch.arange(B)[:, None] * S).reshape(-1)
        labels = ids.reshape(-1)[flat]
        ids.view(-1)[flat] = 103
        mask = torch.ones(B, S, dtype=torch.long)
        types = torch.zeros(B, S, dtype=torch.long)
        t = time.perf_counter()
        hidden = model.bert(ids, mask, types).reshape(B * S, -1)[flat]
        logits = model.cls.predictions.transform(hidden) @ model.bert.embeddings.word_embeddings.weight.T + model.cls.predictions.bias
        loss_t = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append((time.perf_counter() - t) * 1000)
        loss = float(loss_t)
    warm = sorted(times[2:])
    median = warm[len(warm) // 2]
    print(json.dumps({'batch': B, 'seq': S, 'stepMsMedian': round(median, 1), 'tokensPerSec': round(B * S * 1000 / median), 'loss': loss,
                      'peakRssMB': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), 'torch': torch.__version__}))


if __name__ == '__main__':
    main(json.loads(sys.argv[1]))
