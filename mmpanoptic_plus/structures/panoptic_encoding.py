# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""mmdet's panoptic encoding: ``label + instance_id * INSTANCE_OFFSET``.

A panoptic map (``pred_panoptic_seg.sem_seg``) holds one such value per
pixel: stuff and crowd segments have instance id 0, thing instances ids
``>= 1``. Which label means VOID (``num_classes``, sometimes an extra
``ignore_index``) depends on the caller, so it is left to the caller.
"""
from typing import Tuple, Union

import numpy as np
import torch
from torch import Tensor

ArrayOrTensor = Union[np.ndarray, Tensor]

#: Multiplier of the instance id in a panoptic map (mmdet's
#: ``mmdet.evaluation.functional.INSTANCE_OFFSET``; the one definition in
#: this package, so that pure-torch modules need not import mmdet).
INSTANCE_OFFSET = 1000


def encode_panoptic(labels: Union[ArrayOrTensor, int],
                    instance_ids: Union[ArrayOrTensor, int],
                    offset: int = INSTANCE_OFFSET) -> ArrayOrTensor:
    """Encode labels and instance ids as ``label + instance_id * offset``.

    The arithmetic is done in int64 whatever the input dtypes, so that
    ``uint8`` labels or ``int32`` ids cannot overflow. No value is checked
    (this runs inside traced and GPU code): labels must lie in
    ``[0, offset)`` and instance ids must be ``>= 0`` for
    :func:`split_panoptic` to invert the encoding.

    Args:
        labels (np.ndarray | Tensor | int): Class labels, any shape.
        instance_ids (np.ndarray | Tensor | int): Instance ids, broadcastable
            to ``labels``.
        offset (int): Multiplier of the instance id. Defaults to
            :data:`INSTANCE_OFFSET` (1000).

    Returns:
        np.ndarray | Tensor: int64 values of the broadcast shape; a tensor
        (on the device of the tensor input) when either input is a tensor,
        else a numpy array.
    """
    if isinstance(labels, Tensor) or isinstance(instance_ids, Tensor):
        device = (labels if isinstance(labels, Tensor) else
                  instance_ids).device
        labels = torch.as_tensor(labels, device=device).long()
        instance_ids = torch.as_tensor(instance_ids, device=device).long()
        return labels + instance_ids * offset
    labels = np.asarray(labels).astype(np.int64, copy=False)
    instance_ids = np.asarray(instance_ids).astype(np.int64, copy=False)
    return labels + instance_ids * offset


def split_panoptic(
        values: ArrayOrTensor,
        offset: int = INSTANCE_OFFSET
) -> Tuple[ArrayOrTensor, ArrayOrTensor]:
    """Split encoded panoptic values into labels and instance ids.

    The inverse of :func:`encode_panoptic` for non-negative values: labels
    are ``values % offset`` and instance ids ``values // offset``, in the
    dtype (and, for tensors, on the device) of ``values``. Void is not
    decided here: it is the label ``num_classes`` (and maybe an
    ``ignore_index``) of the caller's class list.

    Args:
        values (np.ndarray | Tensor): Non-negative integer encoded values,
            any shape (a whole ``(H, W)`` map or its distinct values).
        offset (int): Multiplier of the instance id. Defaults to
            :data:`INSTANCE_OFFSET` (1000).

    Returns:
        tuple[np.ndarray | Tensor, np.ndarray | Tensor]: ``labels`` and
        ``instance_ids``, each of the shape of ``values``.
    """
    return values % offset, values // offset
