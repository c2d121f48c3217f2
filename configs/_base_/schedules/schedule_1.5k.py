# The GhostShapes schedule: 1500 iterations of batch 8 from scratch, sized
# for 2 CPU cores (one evaluation and one checkpoint, at the end).
max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1),
]

# From scratch: AdamW (it learned faster than SGD at lr 0.01 or 0.04 here;
# lr 0.002 beat 0.001), linear warm-up, steps down late; gradient clipping
# keeps early iterations from diverging (SGD without it went NaN near
# iteration 260). fused=True: torch's one-kernel AdamW (CPU and CUDA), the
# same update as the per-parameter loop (tests/test_train_speed.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05, fused=True),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)

