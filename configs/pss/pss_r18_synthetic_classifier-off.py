# Table 5's classifier switch off on the synthetic set: pss_r18_synthetic.py
# without the segment classifier (Sec. 3.2); each segment takes the class of
# the nearest class-mean prototype instead (the README's stand-in for the
# paper's nearest-neighbour retrieval). Trained like the first stage of the
# shipped checkpoint (2000 iterations) for the seed sweep of
# configs/pss/README.md.
_base_ = './pss_r18_synthetic.py'
model = dict(panoptic_head=dict(classifier_channels=None))
