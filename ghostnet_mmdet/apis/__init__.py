from .inference import config_metainfo, detector_to_time, load_detector
from .checkpoint_check import (Comparison, check_detector_checkpoint, describe_checkpoint,
                               arch_name, find_resumable_checkpoint, identify_ghostnet,
                               identify_ghostnet_arch, read_checkpoint)

__all__ = ['Comparison', 'check_detector_checkpoint', 'describe_checkpoint',
           'arch_name', 'find_resumable_checkpoint', 'identify_ghostnet',
           'identify_ghostnet_arch', 'read_checkpoint', 'config_metainfo', 'detector_to_time',
           'load_detector']
