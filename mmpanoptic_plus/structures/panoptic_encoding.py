# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""mmdet's panoptic encoding: ``label + instance_id * INSTANCE_OFFSET``."""

#: Multiplier of the instance id in a panoptic map (mmdet's
#: ``mmdet.evaluation.functional.INSTANCE_OFFSET``; the one definition in
#: this package, so that pure-torch modules need not import mmdet).
INSTANCE_OFFSET = 1000
