"""Reference values for the native optimizer update graphs (test/fixtures/torch/optimizers.json).

Runs torch.optim.AdamW (with and without weight decay) and torch.optim.SGD for a few steps on fixed
parameters and gradients, in float64, and records every step's parameters and moments.
`clip`: the same optimizers on two parameters after torch.nn.utils.clip_grad_norm_(max_norm=1.0),
with gradients large enough that clipping engages (and one step where it does not), the total
norm of every step, and a case whose gradients are masked (zeroed entries) before clipping.
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

# Global gradient-norm clipping over two parameters; a separate generator keeps the data above unchanged.
gen = torch.Generator().manual_seed(4321)
shapes = [(3, 5), (5,)]
q0 = [torch.randn(*s, generator=gen, dtype=torch.float64) for s in shapes]
scales = [10.0, 3.0, 0.01, 20.0]  # step 3's norm is below max_norm: no clipping there
qgrads = [[scales[t] * torch.randn(*s, generator=gen, dtype=torch.float64) for s in shapes] for t in range(steps)]
mask = (torch.arange(15, dtype=torch.float64) % 3 == 0).to(torch.float64).reshape(3, 5)
clip_cases = []
for name, make, masked in [
    ('adamw-clip', lambda ps: torch.optim.AdamW(ps, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), False),
    ('sgd-clip', lambda ps: torch.optim.SGD(ps, lr=1.0, weight_decay=0.0), False),
    ('adamw-clip-masked', lambda ps: torch.optim.AdamW(ps, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0), True),
]:
    ps = [torch.nn.Parameter(q.clone()) for q in q0]
    opt = make(ps)
    trace = []
    for t in range(steps):
        for group in opt.param_groups:
            group['lr'] = lrs[t]
        for i, p in enumerate(ps):
            p.grad = qgrads[t][i].clone()
        if masked:
            ps[0].grad.mul_(mask)
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm=1.0)
        opt.step()
        trace.append({'norm': float(norm), 'params': [p.detach().flatten().tolist() for p in ps]})
    clip_cases.append({'name': name, 'masked': masked, 'trace': trace})

out = {
    'torch': torch.__version__, 'shape': [3, 5], 'initial': p0.flatten().tolist(),
    'grads': [g.flatten().tolist() for g in grads], 'lrs': lrs, 'cases': cases,
    'clip': {
        'maxNorm': 1.0, 'shapes': [list(s) for s in shapes], 'initial': [q.flatten().tolist() for q in q0],
        'grads': [[g.flatten().tolist() for g in step] for step in qgrads], 'mask': mask.flatten().tolist(), 'cases': clip_cases,
    },
}
path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'torch', 'optimizers.json')
with open(path, 'w') as f:
    json.dump(out, f)
print('wrote', os.path.normpath(path))
