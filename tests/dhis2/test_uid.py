"""DHIS2 UIDs."""

from __future__ import annotations

import string

import pytest

from appliance.dhis2.uid import generate_uid, generate_uids, is_uid


@pytest.mark.parametrize("uid", ["ImspTQPwCqd", "a0000000000", "Zzzzzzzzzzz", "fbfJHSPpUQD"])
def test_valid_uids(uid: str) -> None:
    assert is_uid(uid)


@pytest.mark.parametrize(
    "bad",
    ["", "ImspTQPwCq", "ImspTQPwCqdd", "1mspTQPwCqd", "_mspTQPwCqd", "Imsp-QPwCqd",
     "ImspTQPwCq ", " ImspTQPwCq", "ImspTQPwCq\n", "ImspTQPwCqé", "ImspTQPwCq١", None, 12345678901,
     b"ImspTQPwCqd"],
)
def test_invalid_uids(bad: object) -> None:
    assert not is_uid(bad)


def test_generate_uid_shape_and_randomness() -> None:
    uids = [generate_uid() for _ in range(2000)]
    assert all(is_uid(u) for u in uids)
    assert len(set(uids)) == len(uids)
    assert {u[0] for u in uids} <= set(string.ascii_letters)
    assert len({u[0] for u in uids}) > 40  # the first letter is drawn from all 52 letters
    assert any(c.isdigit() for u in uids for c in u[1:])


def test_generate_uids() -> None:
    uids = generate_uids(500)
    assert len(uids) == 500 == len(set(uids))
    assert all(is_uid(u) for u in uids)
    assert generate_uids(0) == []


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_generate_uids_rejects_bad_counts(bad: object) -> None:
    with pytest.raises(ValueError):
        generate_uids(bad)  # type: ignore[arg-type]
