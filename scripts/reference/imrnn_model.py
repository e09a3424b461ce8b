"""The IMRNN adapter as in YashSaxena21/IMRNNs (src/imrnns/model.py, MIT licence),
copied without change to its forward pass, so the reference scripts compute
what the released code computes. Loads the released safetensors files
(adapter-only state dicts) with strict key checking."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


class HyperNet(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, dropout: float = 0.1):
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.hypernet = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim // 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim // 2, output_dim * 2),
        )
        for layer in self.hypernet:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.zeros_(layer.bias)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hyper_output = self.hypernet(embedding)
        scale = torch.sigmoid(hyper_output[:, : self.output_dim])
        bias = torch.tanh(hyper_output[:, self.output_dim :])
        return scale, bias


@dataclass(frozen=True)
class ModelConfig:
    input_dim: int
    output_dim: int = 256
    hidden_dim: int = 128
    dropout: float = 0.1


class IMRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.projector = nn.Linear(config.input_dim, config.output_dim)
        self.query_hypernet = HyperNet(config.output_dim, config.hidden_dim, config.output_dim, config.dropout)
        self.doc_hypernet = HyperNet(config.output_dim, config.hidden_dim, config.output_dim, config.dropout)
        self.query_norm = nn.LayerNorm(config.output_dim)
        self.doc_norm = nn.LayerNorm(config.output_dim)

    def project(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projector(embeddings), p=2, dim=-1)

    def modulate_documents(self, query_embeddings, document_embeddings):
        q_scale, q_bias = self.query_hypernet(query_embeddings)
        return self.doc_norm(document_embeddings * q_scale.unsqueeze(1) + q_bias.unsqueeze(1))

    def modulate_query(self, query_embeddings, modulated_documents):
        document_summary = modulated_documents.mean(dim=1)
        d_scale, d_bias = self.doc_hypernet(document_summary)
        return self.query_norm(query_embeddings * d_scale + d_bias)

    def forward(self, query_embeddings, document_embeddings):
        """query_embeddings [batch, input_dim]; document_embeddings [batch, docs_per_query, input_dim]."""
        projected_queries = self.project(query_embeddings)
        projected_documents = self.project(document_embeddings)
        modulated_documents = self.modulate_documents(projected_queries, projected_documents)
        modulated_queries = self.modulate_query(projected_queries, modulated_documents)
        scores = torch.einsum(
            "bd,bkd->bk",
            F.normalize(modulated_queries, p=2, dim=-1),
            F.normalize(modulated_documents, p=2, dim=-1),
        )
        return modulated_queries, modulated_documents, scores


def load_adapter(path: str) -> tuple[IMRNN, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = load_file(path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    out_dim, in_dim = state["projector.weight"].shape
    hidden = state["query_hypernet.hypernet.0.weight"].shape[0]
    model = IMRNN(ModelConfig(input_dim=in_dim, output_dim=out_dim, hidden_dim=hidden))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, meta
