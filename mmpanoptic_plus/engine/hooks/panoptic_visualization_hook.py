# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Hook that draws panoptic predictions during validation and testing."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.structures import DetDataSample
from mmengine.fileio import get
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

from mmpanoptic_plus.registry import HOOKS


@HOOKS.register_module()
class PanopticVisualizationHook(DetVisualizationHook):
    """mmdet's :class:`DetVisualizationHook` for panoptic samples.

    Behaviour as mmdet's: with ``draw=True``, every ``interval``-th
    validation iteration sends its first sample (ground truth left,
    prediction right) to the visualizer's backends; during testing every
    sample is drawn, to ``test_out_dir`` when given (relative to
    ``work_dir/timestamp``), else to the backends. Use it with
    :class:`PanopticLocalVisualizer`.

    Differences from mmdet 3.3's hook, on purpose:

    * ``test_out_dir`` is resolved once per test run (mmdet re-joins it with
      ``work_dir/timestamp`` at every iteration, nesting folders);
    * during validation the image is only read on iterations that draw;
    * drawings are written as ``<image stem>.png`` (lossless, an overlay in
      JPEG smears the outlines);
    * ``draw_gt`` chooses whether the ground truth is drawn next to the
      prediction.

    Args:
        draw (bool): Draw anything at all. Defaults to False.
        interval (int): Validation iterations between drawings.
        score_thr (float): Score threshold for instance predictions.
        show (bool): Show in a window instead of saving.
        wait_time (float): Seconds a shown window stays.
        test_out_dir (str, optional): Folder, under
            ``work_dir/timestamp``, for the test drawings.
        draw_gt (bool): Draw the ground truth next to the prediction when
            the sample has one. Defaults to True.
        backend_args (dict, optional): File backend arguments for reading
            the images.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 score_thr: float = 0.3,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 draw_gt: bool = True,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(
            draw=draw,
            interval=interval,
            score_thr=score_thr,
            show=show,
            wait_time=wait_time,
            test_out_dir=test_out_dir,
            backend_args=backend_args)
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.draw_gt = draw_gt
        self._test_out_path: Optional[str] = None

    def _read_rgb(self, img_path: str) -> np.ndarray:
        img_bytes = get(img_path, backend_args=self.backend_args)
        return mmcv.imfrombytes(img_bytes, channel_order='rgb')

    def before_run(self, runner: Runner) -> None:
        """Draw with the runner's own visualizer.

        mmdet's hook takes ``Visualizer.get_current_instance()`` when it is
        built, which is the *latest created* visualizer of the process, not
        necessarily the runner's: two runners made within the same second
        share a timestamp-based name, and re-registering an existing name
        does not move it to the end of mmengine's instance dict, so the
        current instance can be another runner's (seen as a plain
        ``Visualizer`` without ``pred_score_thr``).
        """
        self._visualizer = runner.visualizer

    def before_test(self, runner: Runner) -> None:
        """Resolve and create ``test_out_dir`` once for this test run."""
        self._test_out_path = None
        if self.draw and self.test_out_dir is not None:
            self._test_out_path = osp.join(runner.work_dir, runner.timestamp,
                                           self.test_out_dir)
            mkdir_or_exist(self._test_out_path)

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        """Draw the first sample of every ``interval``-th batch.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the val loop.
            data_batch (dict): The batch from the dataloader.
            outputs (Sequence[DetDataSample]): Samples with predictions.
        """
        if self.draw is False or not outputs:
            return
        # as mmdet: the step counts train iterations plus val batches
        total_curr_iter = runner.iter + batch_idx
        if total_curr_iter % self.interval != 0:
            return
        img_path = outputs[0].img_path
        self._visualizer.add_datasample(
            osp.basename(img_path) if self.show else 'val_img',
            self._read_rgb(img_path),
            data_sample=outputs[0],
            draw_gt=self.draw_gt,
            show=self.show,
            wait_time=self.wait_time,
            pred_score_thr=self.score_thr,
            step=total_curr_iter)

    def after_test_iter(self, runner: Runner, batch_idx: int,
                        data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        """Draw every test sample.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the test loop.
            data_batch (dict): The batch from the dataloader.
            outputs (Sequence[DetDataSample]): Samples with predictions.
        """
        if self.draw is False:
            return
        if self.test_out_dir is not None and self._test_out_path is None:
            # called without before_test (e.g. by a custom loop)
            self.before_test(runner)
        for data_sample in outputs:
            self._test_index += 1
            img_path = data_sample.img_path
            out_file = None
            if self._test_out_path is not None:
                stem = osp.splitext(osp.basename(img_path))[0]
                out_file = osp.join(self._test_out_path, f'{stem}.png')
            self._visualizer.add_datasample(
                osp.basename(img_path) if self.show else 'test_img',
                self._read_rgb(img_path),
                data_sample=data_sample,
                draw_gt=self.draw_gt,
                show=self.show,
                wait_time=self.wait_time,
                pred_score_thr=self.score_thr,
                out_file=out_file,
                step=self._test_index)
