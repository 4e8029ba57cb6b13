# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .panoptic_data_preprocessor import PanopticDataPreprocessor

__all__ = ['PanopticDataPreprocessor']
