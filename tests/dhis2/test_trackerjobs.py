"""A finished tracker job's notifications, as DHIS2 2.41 writes them (the Android SDK's
fixture), read back; anything else means "read the report"."""

from __future__ import annotations

from appliance.dhis2.trackerjobs import completion, completion_message
from tests.contract import sdk


def test_dhis2s_completed_job_is_read() -> None:
    done = completion(sdk.fixture("imports/tracker-importer/job_response_completed.json"))
    assert done is not None and done.status == "OK"
    assert done.stats == {"created": 0, "updated": 1, "deleted": 0, "ignored": 0, "total": 1}


def test_the_hubs_message_is_dhis2s() -> None:
    stats = {"created": 3, "updated": 2, "deleted": 0, "ignored": 1}
    done = completion([{"message": completion_message("ERROR", stats), "completed": True}])
    assert done is not None and done.status == "ERROR" and done.ignored == 1


def test_unfinished_or_unknown_messages_mean_read_the_report() -> None:
    assert completion([{"message": "Running Validation", "completed": False}]) is None
    assert completion([{"message": "Import done (took 2 s)", "completed": True}]) is None
    assert completion({"message": "x"}) is None
    assert completion(None) is None
    running = [{"message": "Import complete with status OK, 1 created, 0 updated, 0 deleted, "
                           "0 ignored", "completed": False}]
    assert completion(running) is None
