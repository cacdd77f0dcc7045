"""A property computed once per instance, as ``functools.cached_property`` but without its lock.

Python 3.11's ``functools.cached_property`` holds one lock per property of a class, shared by
every instance, while it computes: the table grades two models at a time in two threads, each
with its own instances, and each waited for the other's sort (numpy sorts without the GIL)
to end before its own began, so the grading never ran in parallel. Python 3.12 dropped the
lock (two threads asking the same instance at once may both compute it; the answers are the
same), and so does this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached_property(Generic[T]):
    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | cached_property[T]:
        if instance is None:
            return self
        found = self.func(instance)
        instance.__dict__[self.name] = found  # the instance's own value hides this (non-data) descriptor
        return found
