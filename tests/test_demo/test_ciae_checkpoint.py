# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""What the shipped CIAE checkpoint (demo/checkpoints/ciae_r18_synthetic-*.pth)
carries beyond the weights every shipped checkpoint has (size, hash name,
class names, strict loading and PQ on unseen images are checked for all of
them in test_registry_checkpoints.py): its memory embeddings."""
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = str(REPO_ROOT / 'demo' / 'checkpoints' /
                 'ciae_r18_synthetic-de96b89e.pth')


def test_checkpoint_carries_its_memory():
    state = torch.load(CHECKPOINT, weights_only=True)['state_dict']
    # the memory (1 merged thing row + 2 stuff rows, E = 32) and its
    # update counter t = T travel with the weights
    assert state['bbox_head.memory.embeddings'].shape == (3, 32)
    assert int(state['bbox_head.memory.num_updates']) == 4000
