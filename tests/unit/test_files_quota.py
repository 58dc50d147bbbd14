"""Upload reservations against the storage quota, decided without a database."""

from __future__ import annotations

import pytest

from server.files.quota import reservable
from server.kernel.realtime_errors import UploadError


def test_a_size_that_fits_is_reserved_whole() -> None:
    assert reservable(100, 0, 1000, fit=False) == 100
    assert reservable(100, 900, 1000, fit=False) == 100


def test_a_size_past_the_quota_is_refused_with_what_is_used() -> None:
    with pytest.raises(UploadError) as caught:
        reservable(101, 900, 1000, fit=False)
    assert caught.value.code == "quota_exceeded"
    assert caught.value.details == {"quota": 1000, "used": 900}


def test_an_upper_bound_shrinks_to_what_the_quota_leaves() -> None:
    assert reservable(500, 900, 1000, fit=True) == 100
    assert reservable(50, 900, 1000, fit=True) == 50


def test_an_upper_bound_on_a_full_quota_reserves_nothing() -> None:
    assert reservable(500, 1000, 1000, fit=True) == 0


def test_an_owner_already_past_the_quota_is_refused_even_an_upper_bound() -> None:
    with pytest.raises(UploadError) as caught:
        reservable(500, 1200, 1000, fit=True)
    assert caught.value.code == "quota_exceeded"
