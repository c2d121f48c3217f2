"""Argument checks shared by the package's necks and heads: a bad value is
named with what is allowed."""


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'{name} must be an integer >= {minimum}, but got {value!r}')
    return value


def check_odd_kernel(kernel_size, name: str = 'kernel_size') -> int:
    """A positive odd kernel size (same padding with ``kernel_size // 2``)."""
    if check_int(name, kernel_size) % 2 == 0:
        raise ValueError(f'{name} must be odd (same padding), but got {kernel_size}')
    return kernel_size
