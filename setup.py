# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join('mmpanoptic_plus', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(path: str) -> list:
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-r'):
                reqs.append(line)
    return reqs


setup(
    name='mmpanoptic_plus',
    version=read_version(),
    description='Panoptic segmentation methods (PISR, RealTimePanoptic, '
    'CIAE, Unified, PSS) as an OpenMMLab 2.x plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests')),
    python_requires='>=3.8',
    install_requires=read_requirements('requirements/mminstall.txt') +
    read_requirements('requirements/runtime.txt'),
    extras_require=dict(
        tests=read_requirements('requirements/tests.txt'),
        deployment=read_requirements('requirements/optional.txt')),
    license='Apache License 2.0',
    zip_safe=False)
