#!/usr/bin/env python3
"""Regenerates the README's measured tables and figures from the current code.

Each section runs the release binaries (build them first: `cargo build --release -p
experiments`), reads the files the runs write, and replaces the README text between
`<!-- regenerate:NAME -->` and `<!-- /regenerate:NAME -->` (figures are copied to
`assets/results/`). Nothing is typed in by hand, so a README number is always one this code
measured with the command shown next to it.

    python3 assets/regenerate.py reference-vae   # the MNIST VAE curve vs PyTorch (~1 min)
    python3 assets/regenerate.py zoo             # one row per shipped MNIST/count config (~10 min)
    python3 assets/regenerate.py beta-sweep      # the default beta sweep table + figures (~8 min)
    python3 assets/regenerate.py all

MNIST is read from $AE_MNIST_DIR, else ../shared/datasets/mnist. Stdlib only.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
README = ROOT / "README.md"
MNIST = os.environ.get("AE_MNIST_DIR", str(ROOT.parent / "shared" / "datasets" / "mnist"))

# PyTorch 2.15's examples/vae test loss after epochs 1 and 10 (the reference of tests/reference.rs).
PYTORCH = {1: "126.9", 10: "105.3"}

# The shipped configs the zoo table reports, each trained as shipped.
ZOO = [
    "ae_mnist.toml",
    "cvae_mnist.toml",
    "vq_vae_mnist.toml",
    "vq_vae_mnist_ema.toml",
    "skip_vae_mnist.toml",
    "skip_vae_mnist_film.toml",
    "wae_mnist.toml",
    "vae_mnist_free_bits.toml",
    "vae_mnist_capacity.toml",
    "vae_mnist_learned_sigma.toml",
    "vae_mnist_anisotropic_prior.toml",
    "vae_counts_poisson.toml",
    "vae_counts_negbin.toml",
]


def run(binary, *args):
    cmd = [str(BIN / binary), *args, "--plain"]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def summaries(folder):
    """The summary.json files of the runs a binary wrote under `folder`."""
    return list(Path(folder).rglob("summary.json"))


def replace_section(name, text):
    body = README.read_text()
    start, end = f"<!-- regenerate:{name} -->\n", f"<!-- /regenerate:{name} -->"
    i, j = body.index(start) + len(start), body.index(end)
    README.write_text(body[:i] + text.rstrip("\n") + "\n" + body[j:])
    print(f"README: section {name} regenerated", file=sys.stderr)


def minus(x, digits):
    s = f"{x:.{digits}f}"
    return s.replace("-", "−")


def reference_vae():
    with tempfile.TemporaryDirectory() as out:
        run("train", "--config", "assets/configs/vae_mnist.toml", "--data-dir", MNIST, "--out", out)
        (summary,) = summaries(out)
        rows = list(csv.DictReader(open(summary.parent / "metrics.csv")))
        s = json.loads(summary.read_text())
        timing = json.loads((summary.parent / "timing.json").read_text())
    epochs = sorted({int(r["epoch"]) for r in rows})
    loss = {(int(r["epoch"]), r["split"]): float(r["loss"]) for r in rows}
    head = "| epoch | " + " | ".join(str(e) for e in epochs) + " |"
    sep = "|---|" + "---|" * len(epochs)
    train = "| train loss | " + " | ".join(f"{loss[(e, 'train')]:.2f}" for e in epochs) + " |"
    test = "| test loss  | " + " | ".join(f"{loss[(e, 'valid')]:.2f}" for e in epochs) + " |"
    torch = "| PyTorch 2.15 test loss | " + " | ".join(PYTORCH.get(e, "") for e in epochs) + " |"
    torch = torch.replace("|  ", "| ").replace("  |", " |")
    tail = (
        f"\nFinal test figures: recon {s['recon']:.2f} + KL {s['kl']:.2f} nats, "
        f"{s['active_units']:.0f}/{s['latent_dim']} active units; "
        f"{timing['train_seconds']:.1f} s of training (`timing.json`)."
    )
    replace_section("reference-vae", "\n".join([head, sep, train, test, torch]) + "\n" + tail)


def zoo():
    lines = [
        "| config | epochs | valid loss | recon | KL | active units | collapse alarm | codebook (perplexity, codes used) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ZOO:
        with tempfile.TemporaryDirectory() as out:
            run("train", "--config", f"assets/configs/{name}", "--data-dir", MNIST, "--out", out)
            (summary,) = summaries(out)
            s = json.loads(summary.read_text())
            if name == "cvae_mnist.toml":
                shutil.copy(summary.parent / "samples.png", ROOT / "assets/results/cvae_mnist_samples.png")
        codebook = (
            f"{s['perplexity']:.1f}, {s['codes_used']:.0f}/{s['codes_used'] + s['dead_codes']:.0f}, "
            f"MSE/pixel {s['mse_per_pixel']:.5f}"
            if s.get("perplexity") is not None
            else ""
        )
        active = "" if s.get("active_units") is None else f"{s['active_units']:.0f}/{s['latent_dim']}"
        kl = "" if codebook else minus(s["kl"], 3)
        alarm = "**fires**" if s.get("posterior_collapse") else ""
        lines.append(
            f"| `{name}` | {s['epochs']} | {minus(s['loss'], 2)} | {minus(s['recon'], 2)} | {kl} "
            f"| {active} | {alarm} | {codebook} |"
        )
    replace_section("zoo", "\n".join(lines))


def beta_sweep():
    with tempfile.TemporaryDirectory() as out:
        run("beta_sweep", "--out", out)
        (results,) = list(Path(out).rglob("results.csv"))
        rows = list(csv.DictReader(open(results)))
        for fig, to in [
            ("rd_curve.png", "beta_sweep_rd_curve.png"),
            ("disentanglement.png", "beta_sweep_disentanglement.png"),
            ("traversal_beta_4.png", "beta_sweep_traversal_beta_4.png"),
        ]:
            shutil.copy(results.parent / fig, ROOT / "assets/results" / to)
    cols = [
        ("rate", "rate (KL, nats)", 3),
        ("distortion", "distortion (recon, nats)", 3),
        ("elbo", "ELBO", 3),
        ("active_units", "active units", 0),
        ("collapsed_dims", "collapsed dims", 0),
        ("mig", "MIG", 3),
        ("factor_vae", "FactorVAE", 3),
        ("sap", "SAP", 3),
        ("dci", "DCI dis.", 3),
        ("mutual_information", "I(x; z)", 3),
        ("total_correlation", "TC", 3),
    ]
    lines = [
        "| β | " + " | ".join(h for _, h, _ in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for r in rows:
        if r["seed"] == "mean":
            continue
        lines.append(
            f"| {r['beta']} | " + " | ".join(minus(float(r[c]), d) for c, _, d in cols) + " |"
        )
    replace_section("beta-sweep", "\n".join(lines))


SECTIONS = {"reference-vae": reference_vae, "zoo": zoo, "beta-sweep": beta_sweep}

if __name__ == "__main__":
    names = sys.argv[1:] or ["--help"]
    if names == ["all"]:
        names = list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        sys.exit(f"usage: regenerate.py {' | '.join(SECTIONS)} | all (unknown: {' '.join(unknown)})")
    if not (BIN / "train").exists():
        sys.exit("build the binaries first: cargo build --release -p experiments")
    for n in names:
        SECTIONS[n]()
