from .checkpoint_check import (Comparison, check_detector_checkpoint, describe_checkpoint,
                               find_resumable_checkpoint, identify_ghostnet, read_checkpoint)

__all__ = ['Comparison', 'check_detector_checkpoint', 'describe_checkpoint',
           'find_resumable_checkpoint', 'identify_ghostnet', 'read_checkpoint']
