"""PyTorch twin of the reference MLP VAE benchmark (784-400-20, Adam 1e-3, batch 128).

Prints one JSON line: seconds per training epoch over MNIST's 60,000 images (repeats after a
warm-up epoch) and peak RSS. Usage: python3 mlp_vae.py MNIST_DIR [--epochs N] [--threads T]
"""
import argparse, json, resource, time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import common


class Vae(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def loss_fn(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kl) / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mnist_dir", type=Path)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = common.load_mnist(args.mnist_dir).flatten(1)  # [60000, 784]
    model = Vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for epoch in range(args.epochs + 1):  # epoch 0 is the warm-up
        perm = torch.randperm(x.shape[0])
        start = time.perf_counter()
        for i in range(0, x.shape[0], 128):
            batch = x[perm[i : i + 128]]
            opt.zero_grad()
            logits, mu, logvar = model(batch)
            loss = loss_fn(logits, batch, mu, logvar)
            loss.backward()
            opt.step()
        if epoch > 0:
            times.append(time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"model": "mlp_vae", "framework": f"pytorch {torch.__version__}",
                      "threads": args.threads, "seconds_per_epoch": times,
                      "samples_per_second": x.shape[0] / min(times), "peak_rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
