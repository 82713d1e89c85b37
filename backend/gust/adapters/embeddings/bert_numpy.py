"""A BERT sentence encoder (mean pooling, unit length) as a numpy forward pass.

Runs sentence-transformers models such as all-MiniLM-L6-v2 from their safetensors weights
and tokenizer.json, without torch: numpy's matrix products release the GIL, so a worker
thread embeds while the event loop serves. bench/RESULTS.md compares it with torch and
checks that both give the same vectors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: F32  # (hidden, 3 * hidden): query, key and value in one product
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1_w: F32
    ln1_b: F32
    up_w: F32
    up_b: F32
    down_w: F32
    down_b: F32
    ln2_w: F32
    ln2_b: F32


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    out: F32 = centered / np.sqrt(var + eps) * weight + bias
    return out


def _gelu(x: F32) -> F32:
    """BERT's exact GELU, x * Phi(x), computed in place of `x` (a fresh matmul result).

    numpy has no erf: Abramowitz & Stegun 7.1.26 gives it to 1.5e-7, below float32's
    resolution here (the tanh estimate some ports use is off by up to 1e-3). With
    P = poly(t) * exp(-z^2) for z = |x| / sqrt(2), Phi(x) = 1 - P / 2 for x >= 0 and P / 2
    below, so GELU is x - x P / 2 or x P / 2: a handful of passes over the array.
    """
    z = np.abs(x)
    z *= np.float32(1.0 / math.sqrt(2.0))
    e = np.square(z)
    np.negative(e, out=e)
    np.exp(e, out=e)
    z *= np.float32(0.3275911)
    z += np.float32(1.0)
    t = np.reciprocal(z, out=z)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    poly *= e
    poly *= np.float32(0.5)
    poly *= x  # x P / 2
    out: F32 = np.where(x >= 0, x - poly, poly)
    return out


class BertEncoder:
    """Sentence vectors from a BERT checkpoint: tokenize, encode, mean-pool, normalise."""

    def __init__(self, model_dir: Path, *, max_tokens: int | None = None) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{model_dir}: not a BERT model with GELU")
        self.hidden: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.eps: float = config.get("layer_norm_eps", 1e-12)
        st_config = model_dir / "sentence_bert_config.json"
        limit = json.loads(st_config.read_text()).get("max_seq_length") if st_config.exists() else None
        self.max_tokens: int = max_tokens or limit or config["max_position_embeddings"]
        weights = load_file(str(model_dir / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> F32:
            value: F32 = np.ascontiguousarray(weights[prefix + name], dtype=np.float32)
            return value

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            qkv_w = np.concatenate([w(att + f"self.{n}.weight") for n in ("query", "key", "value")])
            qkv_b = np.concatenate([w(att + f"self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(_Layer(
                qkv_w=np.ascontiguousarray(qkv_w.T), qkv_b=qkv_b,
                out_w=np.ascontiguousarray(w(att + "output.dense.weight").T),
                out_b=w(att + "output.dense.bias"),
                ln1_w=w(att + "output.LayerNorm.weight"), ln1_b=w(att + "output.LayerNorm.bias"),
                up_w=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                up_b=w(p + "intermediate.dense.bias"),
                down_w=np.ascontiguousarray(w(p + "output.dense.weight").T),
                down_b=w(p + "output.dense.bias"),
                ln2_w=w(p + "output.LayerNorm.weight"), ln2_b=w(p + "output.LayerNorm.bias"),
            ))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()

    @property
    def dimensions(self) -> int:
        return self.hidden

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> F32:
        """Unit-length vectors, one row per text, in order (float32, shape (n, hidden))."""
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        # Batches of similar lengths: little padding, so little wasted work.
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(lengths[i] for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.float32)
            for row, i in enumerate(batch):
                ids[row, :lengths[i]] = encodings[i].ids
                mask[row, :lengths[i]] = 1.0
            out[batch] = self._forward(ids, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: F32) -> F32:
        batch, width = ids.shape
        heads, size = self.heads, self.hidden // self.heads
        x: F32 = self.word[ids] + self.position[:width][None, :, :] + self.token_type[0]
        x = _layer_norm(x, *self.emb_ln, self.eps)
        # Padding gets a large negative score, so softmax gives it no weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(size))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (batch, width, 3 * hidden)
            qkv = qkv.reshape(batch, width, 3, heads, size).transpose(2, 0, 3, 1, 4)
            # Contiguous operands: numpy's stacked matmul only calls BLAS for those (strided
            # views take a plain loop several times slower).
            q = np.ascontiguousarray(qkv[0])  # (batch, heads, width, size)
            q *= scale
            k_t = np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2))
            v = np.ascontiguousarray(qkv[2])
            scores = q @ k_t
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, width, self.hidden)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b, self.eps)
            up = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b, self.eps)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled: F32 = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: F32 = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result


def as_lists(vectors: Any) -> list[list[float]]:
    """Rows of a float32 matrix as lists of Python floats (the port's vector type)."""
    rows: list[list[float]] = vectors.tolist()
    return rows
