"""BERT for sequence classification in plain PyTorch, laid out like Hugging Face's
`BertForSequenceClassification` so that `state_dict()` keys are the Hugging Face names
(`bert.encoder.layer.0.attention.output.LayerNorm.weight`, `classifier.weight`, ...).

Shared by `scripts/torch_reference_grads.py` and `scripts/torch_baseline_bench.py`; not a script itself.
Needs Debian's `/usr/bin/python3` (python3-torch 1.13).

Choices that matter for gradient comparison with our ONNX graphs:
- the word embedding has no `padding_idx`: Hugging Face's zeroes the gradient of the [PAD] row, the
  ONNX `Gather` the graphs use does not, and the forward pass is the same either way;
- the attention-mask bias is `(1 - mask) * finfo(float32).min`, the constant torch's exporter writes,
  also when the model runs in float64;
- GELU `gelu` is the exact erf form (the ONNX graphs use `Erf`).
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BertShape:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = 'gelu'
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    num_labels: int = 2
    pad_token_id: int = 0

    def hf_config(self, initializer_range: float = 0.02, problem_type: Optional[str] = None) -> Dict:
        """The Hugging Face `BertConfig` JSON for this shape (what `config.json` holds)."""
        labels = {str(i): f'LABEL_{i}' for i in range(self.num_labels)}
        cfg = {
            'architectures': ['BertForSequenceClassification'],
            'attention_probs_dropout_prob': self.attention_probs_dropout_prob,
            'classifier_dropout': None,
            'hidden_act': self.hidden_act,
            'hidden_dropout_prob': self.hidden_dropout_prob,
            'hidden_size': self.hidden_size,
            'id2label': labels,
            'initializer_range': initializer_range,
            'intermediate_size': self.intermediate_size,
            'label2id': {v: int(k) for k, v in labels.items()},
            'layer_norm_eps': self.layer_norm_eps,
            'max_position_embeddings': self.max_position_embeddings,
            'model_type': 'bert',
            'num_attention_heads': self.num_attention_heads,
            'num_hidden_layers': self.num_hidden_layers,
            'pad_token_id': self.pad_token_id,
            'position_embedding_type': 'absolute',
            'torch_dtype': 'float32',
            'type_vocab_size': self.type_vocab_size,
            'vocab_size': self.vocab_size,
        }
        if problem_type is not None:
            cfg['problem_type'] = problem_type
        return cfg


def activation(name: str) -> nn.Module:
    if name == 'gelu':
        return nn.GELU()
    if name in ('gelu_new', 'gelu_pytorch_tanh'):
        return nn.GELU(approximate='tanh')
    if name == 'relu':
        return nn.ReLU()
    raise ValueError(f'hidden_act {name!r} not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)')


class SelfAttention(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.heads = c.num_attention_heads
        self.head_size = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def heads_first(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_size).permute(0, 2, 1, 3)

    def forward(self, x, mask_bias):
        q, k, v = self.heads_first(self.query(x)), self.heads_first(self.key(x)), self.heads_first(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size) + mask_bias
        probs = self.dropout(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class ResidualOutput(nn.Module):
    """dense → dropout → + residual → LayerNorm (both `attention.output` and `output`)."""

    def __init__(self, c: BertShape, fan_in: int):
        super().__init__()
        self.dense = nn.Linear(fan_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class Attention(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = ResidualOutput(c, c.hidden_size)

    def forward(self, x, mask_bias):
        return self.output(self.self(x, mask_bias), x)


class Intermediate(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.intermediate_act_fn = activation(c.hidden_act)

    def forward(self, x):
        return self.intermediate_act_fn(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = ResidualOutput(c, c.intermediate_size)

    def forward(self, x, mask_bias):
        a = self.attention(x, mask_bias)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, mask_bias):
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


class Embeddings(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x))


class Pooler(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, x):
        return self.activation(self.dense(x[:, 0]))


class Bert(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        dtype = self.embeddings.word_embeddings.weight.dtype
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(torch.float32).min
        return self.pooler(self.encoder(self.embeddings(input_ids, token_type_ids), mask_bias))


class BertForSequenceClassification(nn.Module):
    def __init__(self, c: BertShape):
        super().__init__()
        self.shape = c
        self.bert = Bert(c)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.classifier(self.dropout(self.bert(input_ids, attention_mask, token_type_ids)))


def hf_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Hugging Face's loss: mean MSE for one output (regression), else mean softmax cross-entropy."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)
