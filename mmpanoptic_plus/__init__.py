# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""mmpanoptic_plus: panoptic segmentation methods for MMDetection/MMSegmentation.

Importing the package checks that the OpenMMLab stack it was written for is
installed, and says what to install when it is not.
"""
from importlib import metadata

from .version import __version__

# (distribution name, import name, min inclusive, max exclusive)
_REQUIRED = (
    ('mmengine', 'mmengine', '0.10.0', '1.0.0'),
    ('mmcv', 'mmcv', '2.0.0', '2.2.0'),
    ('mmdet', 'mmdet', '3.3.0', '3.4.0'),
    ('mmsegmentation', 'mmseg', '1.2.2', '1.3.0'),
)

_INSTALL_HINT = (
    'Install the pinned stack with `make install` (it builds mmcv 2.1.0 from '
    'source), or by hand: pip install torch==2.13.0 "setuptools<70" wheel && '
    'pip install --no-build-isolation mmcv==2.1.0 && '
    'pip install mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 ftfy '
    'regex')


def _version_tuple(version: str) -> tuple:
    parts = []
    for piece in version.split('+')[0].split('.')[:3]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def check_dependencies() -> None:
    """Raise :class:`ImportError` naming what to install if a dependency of
    the OpenMMLab stack is missing or outside the supported range."""
    problems = []
    for dist, module, low, high in _REQUIRED:
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f'{dist} ({module}) is not installed; '
                            f'need {low} <= version < {high}')
            continue
        if not (_version_tuple(low) <= _version_tuple(found) <
                _version_tuple(high)):
            problems.append(f'{dist}=={found} is installed; mmpanoptic_plus '
                            f'needs {low} <= version < {high}')
    if problems:
        raise ImportError('mmpanoptic_plus cannot run with this '
                          'environment:\n  - ' + '\n  - '.join(problems) +
                          '\n' + _INSTALL_HINT)


check_dependencies()

__all__ = ['__version__', 'check_dependencies']
