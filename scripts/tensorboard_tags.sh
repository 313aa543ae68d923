#!/usr/bin/env bash
# Prints what TensorBoard's own loader (EventAccumulator, with its restart purge) reads from a
# logdir: per run, the scalar tags with point count, first/last step and last value, the text
# tags, and the hparams plugin data. Each scalar line also gives the point count seen by the
# loader the `tensorboard` server uses in Python (plugin_event_accumulator), whose purge ignores
# a run's first SessionLog.START. Used to check files written by this crate against the real
# TensorBoard rather than against our own reader.
#
# Usage: scripts/tensorboard_tags.sh LOGDIR
# The virtual environment is .venv-tensorboard/ beside the repository root unless $TB_VENV is set;
# `pip install tensorboard` runs into it the first time.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 LOGDIR" >&2
    exit 2
fi
logdir=$1
venv=${TB_VENV:-"$(cd "$(dirname "$0")/.." && pwd)/.venv-tensorboard"}

if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check tensorboard >&2
fi

exec "$venv/bin/python" - "$logdir" <<'PY'
import logging
import os
import sys

logging.disable(logging.WARNING)  # keep the "TensorFlow not found" and purge notices off stdout

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

logdir = sys.argv[1]
keep_all = {kind: 0 for kind in ea.DEFAULT_SIZE_GUIDANCE}


def plugin_tags(acc, plugin):
    try:
        return acc.PluginTagToContent(plugin)
    except KeyError:
        return {}


def hparam_value(value):
    kind = value.WhichOneof("kind")
    return repr(getattr(value, kind)) if kind else "<unset>"


runs = sorted(
    root for root, _, files in os.walk(logdir) if any("tfevents" in f for f in files)
)
if not runs:
    sys.exit(f"no event files under {logdir}")

for run_dir in runs:
    acc = ea.EventAccumulator(run_dir, size_guidance=keep_all)
    acc.Reload()
    server = pea.EventAccumulator(run_dir, size_guidance={pea.TENSORS: 0})
    server.Reload()
    print(f"run {os.path.relpath(run_dir, logdir)}")
    for tag in sorted(acc.Tags()["scalars"]):
        points = acc.Scalars(tag)
        print(
            f"  scalar {tag}: {len(points)} points, steps {points[0].step}..{points[-1].step},"
            f" last value {points[-1].value:.6g} (server loader: {len(server.Tensors(tag))} points)"
        )
    for tag in sorted(plugin_tags(acc, "text")):
        tensor = acc.Tensors(tag)[-1].tensor_proto
        text = tensor.string_val[0].decode("utf-8")
        print(f"  text {tag}: {len(acc.Tensors(tag))} entries, last {text!r}")
    hparams = plugin_tags(acc, "hparams")
    print(f"  hparams plugin data: {'present' if hparams else 'absent'} {sorted(hparams)}")
    for tag, content in sorted(hparams.items()):
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        which = data.WhichOneof("data")
        if which == "experiment":
            names = [
                f"{h.name}:{api_pb2.DataType.Name(h.type)}" for h in data.experiment.hparam_infos
            ]
            metrics = [m.name.tag for m in data.experiment.metric_infos]
            print(f"    experiment hparams {names} metrics {metrics}")
        elif which == "session_start_info":
            info = data.session_start_info
            values = ", ".join(f"{k}={hparam_value(v)}" for k, v in sorted(info.hparams.items()))
            print(f"    session start: {values}; group {info.group_name!r}")
        elif which == "session_end_info":
            print(f"    session end: {api_pb2.Status.Name(data.session_end_info.status)}")
PY
