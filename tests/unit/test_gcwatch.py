"""The collector's thresholds and the slow-pause log (server/kernel/gcwatch.py)."""

from __future__ import annotations

import gc
import logging

import pytest

from server.kernel import gcwatch


def test_install_raises_the_young_threshold_once_and_watches() -> None:
    before = gc.get_threshold()
    try:
        gcwatch.install()
        gcwatch.install()
        assert gc.get_threshold() == (gcwatch.YOUNG, gcwatch.MIDDLE, before[2])
        assert gc.callbacks.count(gcwatch.watch) == 1
    finally:
        gc.set_threshold(*before)
        gc.callbacks.remove(gcwatch.watch)


def test_a_slow_collection_is_logged_with_its_generation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = gcwatch.GcWatch()
    with caplog.at_level(logging.WARNING, logger="server.kernel.gcwatch"):
        watch("start", {"generation": 2})
        watch("stop", {"generation": 2, "collected": 0})  # fast: not logged
        assert not caplog.records
        watch("start", {"generation": 2})
        watch.started -= 0.25  # as if it had begun 250 ms ago
        watch("stop", {"generation": 2, "collected": 7})
    [record] = caplog.records
    assert "generation 2" in record.getMessage() and "0.25" in record.getMessage()
    assert watch.slow == 1 and watch.longest >= 0.25
