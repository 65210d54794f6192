"""Training loss: L = KL - CC (TMFI-Net kldiv and Pearson CC) [spec 10]."""

from __future__ import annotations

import torch

EPS = 2.2204e-16


def kldiv(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """KL(gt || pred) of sum-normalised maps [B, H, W], averaged over the batch."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    p = p / (p.sum(1, keepdim=True) + EPS)
    g = g / (g.sum(1, keepdim=True) + EPS)
    return (g * torch.log(EPS + g / (p + EPS))).sum(1).mean()


def cc(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of [B, H, W] maps, averaged over the batch."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    p = p - p.mean(1, keepdim=True)
    g = g - g.mean(1, keepdim=True)
    return ((p * g).sum(1) / (torch.sqrt((p * p).sum(1) * (g * g).sum(1)) + EPS)).mean()


def saliency_loss(pred: torch.Tensor, gt: torch.Tensor, l_kl: float = 1.0, l_cc: float = -1.0) -> torch.Tensor:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {list(pred.shape)} and ground truth {list(gt.shape)} differ in shape")
    return l_kl * kldiv(pred, gt) + l_cc * cc(pred, gt)
