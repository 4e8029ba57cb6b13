#!/usr/bin/env bash
# Create or update the project's virtual environment with the pinned stack.
#
#   bash tools/install_env.sh [VENV_DIR]
#
# Why the steps are in this order:
#  * torch first, from `pip install torch==2.13.0` (a local CPU wheel on the
#    project's machines). A torch already in the environment (e.g. a CUDA
#    build the user installed) is kept, never replaced.
#  * mmdet 3.3.0 and mmseg 1.2.2 assert mmcv < 2.2.0, and mmcv 2.1.0 has no
#    wheel for this torch, so it is built from source against the installed
#    torch: setuptools<70 (its setup.py uses pkg_resources APIs removed later)
#    and wheel, installed into a temporary folder seen only by that build,
#    --no-build-isolation. 7-11 minutes on 2 cores the first time; pip
#    caches the wheel for the next environment.
#  * everything else from requirements/*.txt, then the package in editable
#    mode without touching the dependencies again.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP="$PY -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { echo "[install] $*"; }

if "$PY" -c "import torch" >/dev/null 2>&1; then
    step "torch $("$PY" -c 'import torch; print(torch.__version__)') already present: kept"
else
    step "installing torch (requirements/torch.txt)"
    $PIP install -q -r requirements/torch.txt
fi


mmcv_ok=$("$PY" - <<'PYEOF'
try:
    import mmcv, mmcv.ops  # noqa: F401  (ops proves the compiled extension)
    print('yes' if mmcv.__version__ == '2.1.0' else 'no')
except Exception:
    print('no')
PYEOF
)
if [ "$mmcv_ok" != yes ]; then
    # The old setuptools mmcv's setup.py needs goes into a throw-away folder
    # that only this build sees (PYTHONPATH), never into the environment:
    # torch >= 2.13 requires setuptools >= 77, and installing setuptools<70
    # next to it makes pip print a dependency-conflict ERROR to the user.
    BUILD_TOOLS=$(mktemp -d)
    trap 'rm -rf "$BUILD_TOOLS"' EXIT
    step "build tools for mmcv (requirements/build.txt) in a temporary folder"
    # --no-warn-conflicts: pip would compare the folder's setuptools with
    # torch's requirement although the environment keeps its own setuptools.
    $PIP install -q --no-warn-conflicts --target "$BUILD_TOOLS" \
        -r requirements/build.txt
    step "building mmcv 2.1.0 from source (7-11 minutes on 2 cores the first time; pip caches the wheel)"
    PYTHONPATH="$BUILD_TOOLS${PYTHONPATH:+:$PYTHONPATH}" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        $PIP install -q --no-build-isolation mmcv==2.1.0
else
    step "mmcv 2.1.0 with compiled ops already present"
fi

step "OpenMMLab packages, runtime and test requirements"
$PIP install -q -r requirements/mminstall.txt -r requirements/runtime.txt -r requirements/tests.txt
step "mmpanoptic_plus (editable)"
$PIP install -q --no-deps --no-build-isolation -e .
"$PY" -c "import mmpanoptic_plus, mmcv, mmdet, mmseg, torch; print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)"
