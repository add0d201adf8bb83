"""Reference values for the native optimizer update graphs (test/fixtures/torch/optimizers.json).

Runs torch.optim.AdamW (with and without weight decay) and torch.optim.SGD for a few steps on fixed
parameters and gradients, in float64, and records every step's parameters and moments.
Run: /usr/bin/python3 scripts/torch_reference_optimizers.py
"""
import json, os, torch

torch.manual_seed(1234)
steps = 4
p0 = torch.randn(3, 5, dtype=torch.float64)
grads = [torch.randn(3, 5, dtype=torch.float64) for _ in range(steps)]
lrs = [1e-3, 5e-3, 2e-3, 1e-2]
cases = []
for name, make in [
    ('adamw', lambda ps: torch.optim.AdamW(ps, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    ('adamw-nodecay', lambda ps: torch.optim.AdamW(ps, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
    ('sgd', lambda ps: torch.optim.SGD(ps, lr=1.0, weight_decay=0.0)),
]:
    p = torch.nn.Parameter(p0.clone())
    opt = make([p])
    trace = []
    for t in range(steps):
        for group in opt.param_groups:
            group['lr'] = lrs[t]
        p.grad = grads[t].clone()
        opt.step()
        st = opt.state[p]
        trace.append({
            'param': p.detach().flatten().tolist(),
            'exp_avg': st['exp_avg'].flatten().tolist() if 'exp_avg' in st else None,
            'exp_avg_sq': st['exp_avg_sq'].flatten().tolist() if 'exp_avg_sq' in st else None,
        })
    cases.append({'name': name, 'trace': trace})

out = {
    'torch': torch.__version__, 'shape': [3, 5], 'initial': p0.flatten().tolist(),
    'grads': [g.flatten().tolist() for g in grads], 'lrs': lrs, 'cases': cases,
}
path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'torch', 'optimizers.json')
with open(path, 'w') as f:
    json.dump(out, f)
print('wrote', os.path.normpath(path))
