# Weakly supervised RealTimePanoptic (paper Sec. 5.6 and appendix C): boxes
# and semantic labels only. Foreground = inside a ground-truth box (the
# smallest box wins where boxes overlap), no explicit mask loss.
_base_ = './rtp_r50_fpn_48k_cityscapes.py'
model = dict(
    bbox_head=dict(
        assigner=dict(type='RTPTargetAssigner', use_masks=False),
        loss_mask=None))
