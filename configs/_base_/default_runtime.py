# MMDetection's runtime (hooks, visualizer, environment) with the plugin
# imported, one seed, and logs and checkpoints counted in iterations.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)
randomness = dict(seed=0)

# Iteration-based runs: the log every 25 iterations, one checkpoint kept
# (every 1500 iterations, and the last one: CheckpointHook's save_last).
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(by_epoch=False, interval=1500, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
# tools/test.py --tta merges the augmented views' detections with this.
tta_model = dict(
    type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
