import torch

from dtfsal.loss import cc, kldiv, saliency_loss


def test_identical_maps():
    g = torch.rand(2, 12, 20)
    assert abs(float(kldiv(g, g))) < 1e-6
    assert abs(float(cc(g, g)) - 1.0) < 1e-6
    assert abs(float(saliency_loss(g, g)) + 1.0) < 1e-6


def test_loss_prefers_the_better_map():
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(40.0), indexing="ij")
    gt = torch.exp(-((yy - 12) ** 2 + (xx - 10) ** 2) / 20)[None]
    near = torch.exp(-((yy - 12) ** 2 + (xx - 12) ** 2) / 20)[None]
    far = torch.exp(-((yy - 12) ** 2 + (xx - 32) ** 2) / 20)[None]
    assert saliency_loss(near, gt) < saliency_loss(far, gt)
    assert float(cc(far, gt)) < 0.1 < float(cc(near, gt))
