"""PyTorch twin of the Burn `conv_vae_dsprites` benchmark case: the β-VAE of
assets/configs/beta_vae_dsprites.toml (Burgess et al. 2018 conv architecture, channels
[32, 32, 64, 64], hidden 256, 10 latents, Bernoulli likelihood, β = 4; Adam 5e-4, batch 64) on
2,000 procedural 64x64 dSprites images per epoch.

Prints one JSON line: seconds per training epoch (repeats after a warm-up epoch) and peak RSS.
Usage: python3 conv_vae_dsprites.py [--epochs N] [--threads T]
"""
import torch
import torch.nn.functional as F
from torch import nn

import common

CHANNELS, HIDDEN, LATENT, BETA = [32, 32, 64, 64], 256, 10, 4.0
IMAGES, BATCH, LR = 2000, 64, 5e-4


def conv(c_in, c_out):
    return nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)


def deconv(c_in, c_out):
    return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)


class ConvVae(nn.Module):
    """crates/models/src/nets.rs Architecture::Conv encoder and decoder, vae.rs loss."""

    def __init__(self, side=64):
        super().__init__()
        ins = [1] + CHANNELS[:-1]
        self.convs = nn.ModuleList(conv(a, b) for a, b in zip(ins, CHANNELS))
        self.start = (CHANNELS[-1], side >> len(CHANNELS), side >> len(CHANNELS))
        flat = self.start[0] * self.start[1] * self.start[2]
        self.fc = nn.Linear(flat, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2 * LATENT)  # mean, log-variance
        self.fc1 = nn.Linear(LATENT, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, flat)
        outs = CHANNELS[::-1][1:] + [1]
        self.deconvs = nn.ModuleList(deconv(a, b) for a, b in zip(CHANNELS[::-1], outs))

    def forward(self, x):
        h = x
        for c in self.convs:
            h = F.relu(c(h))
        h = self.head(F.relu(self.fc(h.flatten(1))))
        mu, logvar = h[:, :LATENT], h[:, LATENT:]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        y = F.relu(self.fc2(F.relu(self.fc1(z)))).view(-1, *self.start)
        for i, d in enumerate(self.deconvs):
            y = d(y)
            if i < len(self.deconvs) - 1:
                y = F.relu(y)
        return y, mu, logvar


def loss_fn(model, x):
    logits, mu, logvar = model(x)
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
    return (nll + BETA * kl).mean()


def main():
    args = common.parser(__doc__, data_dir=False).parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = common.dsprites(IMAGES)
    common.bench("conv_vae_dsprites", ConvVae(), loss_fn, x, BATCH, LR, args.epochs, args.threads)


if __name__ == "__main__":
    main()
