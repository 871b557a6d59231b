"""Shared pieces of the PyTorch twins of the Burn benchmark cases (see crates/train/src/bench.rs).

Each twin trains with Adam for a warm-up epoch plus `--epochs` measured ones; an epoch is a fresh
shuffle of the training images and, for every batch (the last one may be short), forward, loss
(mean over the batch of the per-image loss), backward and an Adam step. It prints one JSON line:
seconds per measured epoch and peak RSS.
"""
import argparse, gzip, json, math, resource, struct, time
from pathlib import Path

import torch


def load_mnist(directory: Path, limit=None) -> torch.Tensor:
    """MNIST training images as `[n, 1, 28, 28]` floats in [0, 1] (the first `limit`)."""
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        p = directory / name
        if p.exists():
            raw = gzip.open(p).read() if name.endswith(".gz") else p.read_bytes()
            n, rows, cols = struct.unpack(">III", raw[4:16])
            data = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8)
            x = data.view(n, 1, rows, cols).float() / 255.0
            return x[:limit].contiguous() if limit else x
    raise SystemExit(f"MNIST not found in {directory}")


def dsprites(n: int, seed: int = 0) -> torch.Tensor:
    """`n` procedural dSprites images, `[n, 1, 64, 64]` floats in {0, 1}.

    The same renderer as crates/data/src/dsprites.rs (pixel-centre sampling of a square, an
    ellipse or a heart over 6 scales x 40 orientations x 32 x 32 positions), with factors drawn
    at random from a fixed seed rather than Rust's shuffled subset.
    """
    g = torch.Generator().manual_seed(seed)
    draw = lambda k: torch.randint(0, k, (n, 1, 1), generator=g).float()
    shape = draw(3)
    scale = 0.5 + 0.1 * draw(6)
    theta = 2 * math.pi * draw(40) / 39
    cx, cy = 16 + 32 * draw(32) / 31, 16 + 32 * draw(32) / 31
    r = 12 * scale
    p = torch.arange(64, dtype=torch.float32) + 0.5
    dx, dy = p.view(1, 1, 64) - cx, p.view(1, 64, 1) - cy
    s, c = torch.sin(theta), torch.cos(theta)
    u, v = (dx * c + dy * s) / r, (-dx * s + dy * c) / r
    square = (u.abs() <= 0.8) & (v.abs() <= 0.8)
    ellipse = u * u + (v / 0.5) ** 2 <= 1
    hx, hy = 1.15 * u, -1.1 * v + 0.1
    a = hx * hx + hy * hy - 1
    heart = a * a * a - hx * hx * hy * hy * hy <= 0
    img = torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))
    return img.float().unsqueeze(1)


def parser(doc: str, data_dir: bool) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    if data_dir:
        ap.add_argument("mnist_dir", type=Path)
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    return ap


def bench(name: str, model, loss_fn, x: torch.Tensor, batch_size: int, lr: float, epochs: int,
          threads: int):
    """Trains `model` on `x` and prints the JSON result line; `loss_fn(model, batch)` returns
    the scalar objective."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times = []
    for epoch in range(epochs + 1):  # epoch 0 is the warm-up
        perm = torch.randperm(x.shape[0])
        start = time.perf_counter()
        for i in range(0, x.shape[0], batch_size):
            batch = x[perm[i : i + batch_size]]
            opt.zero_grad()
            loss = loss_fn(model, batch)
            loss.backward()
            opt.step()
        if epoch > 0:
            times.append(time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"model": name, "framework": f"pytorch {torch.__version__}",
                      "threads": threads, "samples": x.shape[0], "seconds_per_epoch": times,
                      "samples_per_second": x.shape[0] / min(times), "peak_rss_mb": rss_mb}))
