# CIAE R50-FPN trained as ciae_r50_fpn_90k_coco.py, tested with the shorter
# side resized to 640 (longer side <= 1066, the 1333/800 ratio): Table IX's
# "Ours-640".
_base_ = './ciae_r50_fpn_90k_coco.py'
backend_args = None
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1066, 640), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackPanopticInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
