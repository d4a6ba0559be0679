# The C boundary scan's signature (_framescan.c), for the type checker: the module is built
# at install and optional, so protocol.py imports it under try.

def scan(text: str, pos: int, start: int, count: int, max_length: int, max_elements: int,
         max_digits: int, /) -> tuple[int, int, int, int, int]: ...
