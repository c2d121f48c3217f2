from .lite_gfl_head import LiteGFLHead

__all__ = ['LiteGFLHead']
