from .checkpoint_conversion import (load_ghostnet_checkpoint, mmdet_to_official,
                                    official_to_mmdet, read_state_dict)

__all__ = ['load_ghostnet_checkpoint', 'mmdet_to_official', 'official_to_mmdet',
           'read_state_dict']
