# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Load the checkpoints our runner writes under ``torch.load(weights_only)``.

Since torch 2.6 :func:`torch.load` defaults to ``weights_only=True``: the
unpickler only rebuilds tensors, containers and globals that were explicitly
allow-listed. mmengine 0.10.7 calls ``torch.load`` without ``weights_only``,
and the checkpoints its runner saves hold more than tensors:

* ``message_hub`` state: :class:`mmengine.logging.HistoryBuffer` objects
  whose ``__getstate__`` stores the statistic methods (``HistoryBuffer.min``
  ...), pickled as ``builtins.getattr(HistoryBuffer, 'min')``;
* the buffers' logs and some ``meta`` values are numpy arrays and scalars
  (``numpy.ndarray``, ``numpy.dtype``, ``numpy._core.multiarray._reconstruct``
  and ``...scalar``).

So ``load_checkpoint`` and ``--resume`` fail with "Unsupported global". We
allow-list exactly those globals (found with
:func:`torch.serialization.get_unsafe_globals_in_checkpoint` on checkpoints of
real short runs, with optimizer and parameter-scheduler state) instead of
turning ``weights_only`` off, which would let a checkpoint run any code.

``builtins.getattr`` is the one dangerous name among them: with the real
``getattr`` allowed, a pickle could fetch any attribute of any allowed
object. We register, under that name, :func:`_history_buffer_getattr`, which
only hands out HistoryBuffer's statistic methods and refuses anything else.
"""
import pickle
from typing import Any, Callable, List, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# HistoryBuffer registers these in ``_set_default_statistics`` (called by
# ``__init__``, so the class-level dict may still be empty while unpickling).
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during ``weights_only`` loading.

    Only resolves ``getattr(HistoryBuffer, <statistic method>)``, the one use
    of ``getattr`` in mmengine checkpoints.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if obj is HistoryBuffer and isinstance(name, str):
        attribute = getattr(HistoryBuffer, name, None)
        statistics = set(HistoryBuffer._statistics_methods.values())
        statistics.update(
            getattr(HistoryBuffer, method) for method in _DEFAULT_STATISTICS)
        if attribute is not None and attribute in statistics:
            return attribute
    raise pickle.UnpicklingError(
        f'Refusing getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'mmpanoptic_plus only allows getattr(HistoryBuffer, <statistic '
        'method>), which mmengine message-hub states contain.')


def _numpy_core_globals() -> List[Tuple[Callable, str]]:
    """The numpy reconstruction functions under the module names numpy 1.x
    (``numpy.core``) and 2.x (``numpy._core``) write into pickles, so that a
    checkpoint saved with either numpy loads with the installed one."""
    try:
        from numpy._core import multiarray  # numpy >= 2.0
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    entries = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    return entries


def mmengine_checkpoint_globals() -> List[Tuple[Callable, str]]:
    """The globals mmengine runner checkpoints contain, beyond torch's
    default ``weights_only`` allow-list.

    Returns:
        list[tuple[Callable, str]]: ``(object, full path in the pickle)``
        pairs, the form :func:`torch.serialization.add_safe_globals` takes.
    """
    entries = [
        (np.ndarray, 'numpy.ndarray'),
        (np.dtype, 'numpy.dtype'),
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    entries.extend(_numpy_core_globals())
    # Not named in the pickle, so ``get_unsafe_globals_in_checkpoint`` does
    # not list them, but needed: a dtype is rebuilt as ``numpy.dtype('f8',
    # ...)`` and its state then set (BUILD), for which the unpickler demands
    # that the instance's own class (``numpy.dtypes.Float64DType``) be
    # allowed. Logs and meta hold plain numeric dtypes only.
    for type_name in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                      'uint16', 'uint32', 'uint64', 'float16', 'float32',
                      'float64'):
        dtype_class = type(np.dtype(type_name))
        entries.append(
            (dtype_class, f'{dtype_class.__module__}.{dtype_class.__name__}'))
    return entries


def allow_mmengine_checkpoint_globals() -> List[str]:
    """Allow-list, for ``torch.load(weights_only=True)``, the globals that
    checkpoints saved by the mmengine runner contain.

    Idempotent: torch keeps the allow-list in a set, and the entries are the
    same objects on every call.

    Returns:
        list[str]: The full paths now allowed, e.g. ``'numpy.ndarray'``.
    """
    entries = mmengine_checkpoint_globals()
    torch.serialization.add_safe_globals(entries)
    return [name for _, name in entries]
