#!/usr/bin/env python3
"""Checks run folders' TensorBoard event files with TensorBoard's own reader and server.

    pip install tensorboard
    python3 assets/tensorboard_check.py RUNS_DIR      # every run folder under RUNS_DIR
    python3 assets/tensorboard_check.py --golden      # the record the Rust test compares with

For each run folder (a folder with metrics.csv and tensorboard/):
  - TensorBoard's EventAccumulator reads tensorboard/train and tensorboard/valid; every
    metrics.csv value (and kl_dim_j) must be there at its epoch, as float32;
  - tensorboard/ holds the image grids (PNG, their sizes) and the hparams session.
Then a TensorBoard server is started on RUNS_DIR and its hparams plugin is asked for the
session groups: one session per run, with its hyper-parameters and the valid/loss metric.
"""
import csv
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request


def golden():
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buf = io.BytesIO()
    writer = RecordWriter(buf)
    value = summary_pb2.Summary.Value(tag="valid/loss", simple_value=0.25)
    event = event_pb2.Event(
        wall_time=1700000000.5, step=3, summary=summary_pb2.Summary(value=[value])
    )
    writer.write(event.SerializeToString())
    writer.flush()
    print(buf.getvalue().hex())


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def check_run(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    board = os.path.join(run, "tensorboard")
    checked = 0
    for split in ["train", "valid"]:
        acc = EventAccumulator(os.path.join(board, split), size_guidance={"scalars": 0})
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        for row in (r for r in rows if r["split"] == split):
            epoch = int(row["epoch"])
            for column, text in row.items():
                if column in ("epoch", "split") or text == "":
                    continue
                tag = column.replace("kl_dim_", "kl_dim/")
                assert tag in tags, f"{run} {split}: no scalar {tag} (has {sorted(tags)})"
                at = {e.step: e.value for e in acc.Scalars(tag)}
                assert epoch in at, f"{run} {split}/{tag}: no step {epoch}"
                assert at[epoch] == f32(float(text)), (run, split, tag, at[epoch], text)
                checked += 1
    acc = EventAccumulator(board, size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    images = {t: acc.Images(t)[-1] for t in acc.Tags()["images"]}
    for tag, image in images.items():
        assert image.encoded_image_string[1:4] == b"PNG", tag
    assert "images/reconstructions" in images, f"{run}: no reconstructions ({images})"
    sizes = {t: f"{i.width}x{i.height}" for t, i in images.items()}
    print(f"{run}: {checked} scalars match metrics.csv; images {sizes}")
    return checked


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_hparams(root, runs):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", root, "--port", str(port),
         "--host", "127.0.0.1", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups"
        body = json.dumps({
            "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN",
                                                       "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [], "startIndex": 0, "sliceSize": 1000,
        }).encode()
        groups = None
        for _ in range(60):
            time.sleep(1)
            try:
                req = urllib.request.Request(url, body, {"Content-Type": "application/json",
                                                         "X-TensorBoard-Feature-Flags": "{}"})
                groups = json.load(urllib.request.urlopen(req))
                if len(groups.get("sessionGroups", [])) >= len(runs):
                    break
            except OSError:
                continue
        assert groups is not None, "TensorBoard did not answer"
        sessions = groups.get("sessionGroups", [])
        assert len(sessions) == len(runs), f"{len(sessions)} sessions for {len(runs)} runs"
        for g in sessions:
            hp = g["hparams"]
            metrics = {(m["name"]["group"], m["name"]["tag"]): m["value"]
                       for m in g["metricValues"]}
            assert ("valid", "loss") in metrics, sorted(metrics)
            mig = metrics.get(("eval", "disentanglement/mig"))
            mig = "" if mig is None else f", eval MIG {mig:.3f}"
            print(f"hparams session {g['name']}: seed {hp.get('seed')}, model.beta "
                  f"{hp.get('model.beta')}, valid/loss {metrics[('valid', 'loss')]:.3f}{mig}, "
                  f"{len(hp)} hparams, {len(metrics)} metrics")
    finally:
        server.terminate()
        server.wait()


def main():
    if sys.argv[1:] == ["--golden"]:
        return golden()
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    runs = sorted(
        d for d, _, files in os.walk(root)
        if "metrics.csv" in files and os.path.isdir(os.path.join(d, "tensorboard"))
    )
    assert runs, f"no run folder with tensorboard/ under {root}"
    for run in runs:
        check_run(run)
    check_hparams(root, runs)
    print(f"ok: {len(runs)} runs")


if __name__ == "__main__":
    main()
