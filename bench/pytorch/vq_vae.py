"""PyTorch twin of the Burn `vq_vae` benchmark case: the VQ-VAE of assets/configs/vq_vae_mnist.toml
(conv 1->32->64, 4x4 stride 2, 1x1 conv to D = 64, K = 128 codes learnt by gradient, commitment
0.25, straight-through; Adam 1e-3, batch 128) on the first 10,000 MNIST training images.

Prints one JSON line: seconds per training epoch (repeats after a warm-up epoch) and peak RSS.
Usage: python3 vq_vae.py MNIST_DIR [--epochs N] [--threads T]
"""
import torch
import torch.nn.functional as F
from torch import nn

import common

CHANNELS, CODES, CODE_DIM, COMMITMENT = [32, 64], 128, 64, 0.25
IMAGES, BATCH, LR = 10_000, 128, 1e-3


class VqVae(nn.Module):
    """crates/models/src/vq_vae.rs without EMA or restarts."""

    def __init__(self):
        super().__init__()
        ins = [1] + CHANNELS[:-1]
        self.encoder = nn.ModuleList(
            nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(ins, CHANNELS))
        self.to_code = nn.Conv2d(CHANNELS[-1], CODE_DIM, 1)
        self.from_code = nn.Conv2d(CODE_DIM, CHANNELS[-1], 1)
        outs = CHANNELS[::-1][1:] + [1]
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)
            for a, b in zip(CHANNELS[::-1], outs))
        bound = 1.0 / CODES
        self.codebook = nn.Parameter(torch.empty(CODES, CODE_DIM).uniform_(-bound, bound))


def loss_fn(model, x):
    b = x.shape[0]
    h = x
    for c in model.encoder:
        h = F.relu(c(h))
    ze = model.to_code(h)  # [b, D, h', w']
    _, d, hh, ww = ze.shape
    z = ze.permute(0, 2, 3, 1).reshape(b * hh * ww, d)  # [M, D]
    cb = model.codebook
    with torch.no_grad():  # nearest code: |z|² − 2 z·e + |e|²
        d2 = z.square().sum(1, keepdim=True) - 2 * z @ cb.t() + cb.square().sum(1)
        idx = d2.argmin(1)
    zq = cb[idx]  # [M, D], a gather as in the Burn model; gradient reaches the codebook
    per_sample = lambda t: t.reshape(b, -1).mean(1)
    codebook_loss = per_sample((zq - z.detach()).square())
    commit_loss = per_sample((z - zq.detach()).square())
    zst = (z + (zq - z).detach()).reshape(b, hh, ww, d).permute(0, 3, 1, 2)
    y = F.relu(model.from_code(zst))
    for i, dc in enumerate(model.decoder):
        y = dc(y)
        if i < len(model.decoder) - 1:
            y = F.relu(y)
    recon = torch.sigmoid(y)
    pixels = x[0].numel()
    recon_loss = (recon - x).square().reshape(b, -1).sum(1)
    return (recon_loss + (codebook_loss + COMMITMENT * commit_loss) * pixels).mean()


def main():
    args = common.parser(__doc__, data_dir=True).parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = common.load_mnist(args.mnist_dir, IMAGES)
    common.bench("vq_vae", VqVae(), loss_fn, x, BATCH, LR, args.epochs, args.threads)


if __name__ == "__main__":
    main()
