# Table 4's "hybrid" switch off on the synthetic set: pss_r18_synthetic.py
# without hybrid scale exemplars (Sec. 3.3), every prototype from the
# stride-4 embedding map. Trained like the first stage of the shipped
# checkpoint (2000 iterations) for the seed sweep of configs/pss/README.md.
_base_ = './pss_r18_synthetic.py'
model = dict(panoptic_head=dict(small_area=None))
