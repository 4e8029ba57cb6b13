# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import os.path as osp
import sys

# Make the shared helpers (panoptic_test_utils) importable from the test
# subfolders.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
