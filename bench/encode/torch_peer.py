#!/usr/bin/python3
"""PyTorch peer of `quiver bench encode`: runs the same BERT weights on the same token ids.

  torch_peer.py --model DIR --threads 2 --serve

Prints {"ready": true}, then answers each JSON line {"ids": IDS.bin, "batch": B, "out": OUT.bin} on
stdin (any other line ends it) with {"paths": {path: {"seconds": whole pass, "batches": [per batch]}}},
every path run once over the rows in file order, B rows per batch (padded to the batch's longest).
IDS.bin: u32 n, u32 L, then n*L int32 token ids, and n int32 lengths (rows are padded with 0).
OUT.bin: n x hidden float32 sentence embeddings of the fastest path (pooling and normalisation).

Two CPU paths are timed and the faster one is reported as PyTorch's row:
  fastpath  nn.TransformerEncoder (torch 1.13's fused inference path: _transformer_encoder_layer_fwd,
            native multi-head attention) under torch.inference_mode();
  eager     the Hugging Face BertModel computation written with torch ops, under inference_mode.
Both use torch.set_num_threads(--threads) and the same batches as the other engines.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = data[base + b: base + en]
        if e["dtype"] == "F32":
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.float32).copy())
        elif e["dtype"] == "F16":
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.float16).astype(np.float32))
        elif e["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            t = torch.from_numpy(u.view(np.float32).copy())
        else:
            continue
        out[name] = t.reshape(e["shape"])
    return out


class Bert:
    def __init__(self, model_dir):
        self.cfg = json.load(open(os.path.join(model_dir, "config.json")))
        W = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.p = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
        self.W = W
        self.pool_cls = False
        self.normalize = False
        mods = os.path.join(model_dir, "modules.json")
        if os.path.exists(mods):
            for m in json.load(open(mods)):
                if m["type"].endswith("Normalize"):
                    self.normalize = True
                if m["type"].endswith("Pooling"):
                    pc = json.load(open(os.path.join(model_dir, m.get("path") or "1_Pooling", "config.json")))
                    self.pool_cls = bool(pc.get("pooling_mode_cls_token"))
        H = self.cfg["hidden_size"]
        nh = self.cfg["num_attention_heads"]
        I = self.cfg["intermediate_size"]
        eps = self.cfg.get("layer_norm_eps", 1e-12)
        g = lambda n: W[self.p + n]
        self.g = g
        self.eps = eps
        self.nh = nh
        layer = torch.nn.TransformerEncoderLayer(H, nh, I, dropout=0.0, activation="gelu",
                                                 layer_norm_eps=eps, batch_first=True)
        self.fast = torch.nn.TransformerEncoder(layer, self.cfg["num_hidden_layers"],
                                                enable_nested_tensor=True).eval()
        with torch.no_grad():
            for i, L in enumerate(self.fast.layers):
                pre = f"encoder.layer.{i}."
                L.self_attn.in_proj_weight.copy_(torch.cat([g(pre + f"attention.self.{n}.weight") for n in ("query", "key", "value")]))
                L.self_attn.in_proj_bias.copy_(torch.cat([g(pre + f"attention.self.{n}.bias") for n in ("query", "key", "value")]))
                L.self_attn.out_proj.weight.copy_(g(pre + "attention.output.dense.weight"))
                L.self_attn.out_proj.bias.copy_(g(pre + "attention.output.dense.bias"))
                L.norm1.weight.copy_(g(pre + "attention.output.LayerNorm.weight"))
                L.norm1.bias.copy_(g(pre + "attention.output.LayerNorm.bias"))
                L.linear1.weight.copy_(g(pre + "intermediate.dense.weight"))
                L.linear1.bias.copy_(g(pre + "intermediate.dense.bias"))
                L.linear2.weight.copy_(g(pre + "output.dense.weight"))
                L.linear2.bias.copy_(g(pre + "output.dense.bias"))
                L.norm2.weight.copy_(g(pre + "output.LayerNorm.weight"))
                L.norm2.bias.copy_(g(pre + "output.LayerNorm.bias"))

    def embed(self, ids):
        g = self.g
        L = ids.shape[1]
        x = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[:L][None] \
            + g("embeddings.token_type_embeddings.weight")[0][None, None]
        H = x.shape[-1]
        return torch.nn.functional.layer_norm(x, (H,), g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), self.eps)

    def encoder_fast(self, ids, pad_mask):
        x = self.embed(ids)
        return self.fast(x, src_key_padding_mask=pad_mask if pad_mask is not None and pad_mask.any() else None)

    def encoder_eager(self, ids, pad_mask):
        g = self.g
        x = self.embed(ids)
        B, L, H = x.shape
        nh = self.nh
        d = H // nh
        add = None
        if pad_mask is not None and pad_mask.any():
            add = torch.zeros(B, 1, 1, L).masked_fill(pad_mask[:, None, None, :], float("-inf"))
        F = torch.nn.functional
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            lin = lambda t, n: F.linear(t, g(p + n + ".weight"), g(p + n + ".bias"))
            q = lin(x, "attention.self.query").view(B, L, nh, d).transpose(1, 2)
            k = lin(x, "attention.self.key").view(B, L, nh, d).transpose(1, 2)
            v = lin(x, "attention.self.value").view(B, L, nh, d).transpose(1, 2)
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
            if add is not None:
                s = s + add
            o = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(B, L, H)
            x = F.layer_norm(lin(o, "attention.output.dense") + x, (H,), g(p + "attention.output.LayerNorm.weight"),
                             g(p + "attention.output.LayerNorm.bias"), self.eps)
            f = F.gelu(lin(x, "intermediate.dense"))
            x = F.layer_norm(lin(f, "output.dense") + x, (H,), g(p + "output.LayerNorm.weight"),
                             g(p + "output.LayerNorm.bias"), self.eps)
        return x

    def pool(self, x, lengths):
        if self.pool_cls:
            v = x[:, 0]
        else:
            mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).to(x.dtype)
            v = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        if self.normalize:
            v = torch.nn.functional.normalize(v, dim=-1)
        return v


def read_ids(path):
    raw = open(path, "rb").read()
    n, L = struct.unpack("<II", raw[:8])
    ids = torch.from_numpy(np.frombuffer(raw[8:8 + 4 * n * L], dtype=np.int32).reshape(n, L).astype(np.int64))
    lengths = torch.from_numpy(np.frombuffer(raw[8 + 4 * n * L:8 + 4 * n * (L + 1)], dtype=np.int32).astype(np.int64))
    return n, ids, lengths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paths", default="fastpath,eager")
    ap.add_argument("--serve", action="store_true", help="answer JSON requests on stdin (the only mode)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = Bert(a.model)
    paths = a.paths.split(",")
    cache = {}

    def run(path, n, ids, lengths, batch):
        fn = model.encoder_fast if path == "fastpath" else model.encoder_eager
        out = torch.empty(n, model.cfg["hidden_size"])
        times = []
        with torch.inference_mode():
            for b0 in range(0, n, batch):
                idx = torch.arange(b0, min(n, b0 + batch))
                t0 = time.perf_counter()
                lb = lengths[idx]
                Lb = int(lb.max())
                pad = torch.arange(Lb)[None, :] >= lb[:, None]
                h = fn(ids[idx, :Lb], pad)
                out[idx] = model.pool(h, lb)
                times.append(time.perf_counter() - t0)
        return out, times

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            break
        if not isinstance(req, dict) or "ids" not in req:
            break
        if req["ids"] not in cache:
            cache[req["ids"]] = read_ids(req["ids"])
            n, ids, lengths = cache[req["ids"]]
            for path in paths:  # warm-up: one batch per path
                run(path, min(n, int(req["batch"])), ids, lengths, int(req["batch"]))
        n, ids, lengths = cache[req["ids"]]
        results, best_t, best_out = {}, float("inf"), None
        for path in paths:
            t0 = time.perf_counter()
            out, times = run(path, n, ids, lengths, max(1, int(req["batch"])))
            total = time.perf_counter() - t0
            results[path] = {"seconds": total, "batches": times}
            if total < best_t:
                best_t, best_out = total, out
        if req.get("out"):
            best_out.numpy().astype(np.float32).tofile(req["out"])
        print(json.dumps({"paths": results}), flush=True)


if __name__ == "__main__":
    main()
