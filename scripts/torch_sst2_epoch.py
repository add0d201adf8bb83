"""PyTorch running one training epoch of bert-mini on the very batches modtune's epoch ran: the baseline of
`npm run bench -- sst2-epoch`.

    /usr/bin/python3 scripts/torch_sst2_epoch.py PLAN.json

PLAN.json is written by the bench: {"lengths": [[tokens of each example of batch 1], ...], "threads": 2,
"dropout": 0.1, "lr": 2e-5}. Each batch is padded to its longest example, as modtune pads it, so both
do the same padding; token ids are random (they do not change the cost). A step = zero_grad + forward
+ loss + backward + AdamW step (weight decay 0.01 except biases and LayerNorm weights), everything
trainable, dropout in training mode. Prints one JSON line: the epoch's wall time, examples/s, the
padding share and the peak RSS. Batches are built inside the timed loop, as a data loader would.
"""
import json
import resource
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # importing bert_torch must not leave __pycache__ in scripts/
sys.path.insert(0, str(Path(__file__).resolve().parent))

MINI = dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024)


def main():
    import torch
    from bert_torch import BertForSequenceClassification, BertShape
    plan = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(plan.get('threads', 2))
    torch.manual_seed(0)
    dropout = plan.get('dropout', 0.1)
    shape = BertShape(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, num_labels=2,
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **MINI)
    model = BertForSequenceClassification(shape)
    no_decay = lambda n: n.endswith('.bias') or 'LayerNorm.weight' in n
    params = list(model.named_parameters())
    optimizer = torch.optim.AdamW([
        {'params': [p for n, p in params if not no_decay(n)], 'weight_decay': 0.01},
        {'params': [p for n, p in params if no_decay(n)], 'weight_decay': 0.0},
    ], lr=plan.get('lr', 2e-5))
    model.train()
    slots = tokens = examples = 0
    start = time.perf_counter()
    for lengths in plan['lengths']:
        b, t = len(lengths), max(lengths)
        ids = torch.randint(1000, shape.vocab_size, (b, t))
        mask = torch.zeros(b, t, dtype=torch.int64)
        for row, n in enumerate(lengths):
            mask[row, :n] = 1
        ids = ids * mask
        types = torch.zeros(b, t, dtype=torch.int64)
        labels = torch.randint(0, 2, (b,))
        optimizer.zero_grad(set_to_none=True)
        logits = model(ids, mask, types)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        slots += b * t
        tokens += sum(lengths)
        examples += b
    wall = time.perf_counter() - start
    print(json.dumps({
        'batches': len(plan['lengths']), 'examples': examples, 'wallSeconds': round(wall, 2),
        'examplesPerSec': round(examples / wall, 1), 'paddingShare': round(1 - tokens / slots, 4),
        'peakRssMB': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == '__main__':
    main()
