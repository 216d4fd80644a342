"""DHIS2 WebMessage and ImportSummary shapes, as real servers send them."""

from __future__ import annotations

from typing import Any

HTTP_STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable",
}


def web_message(status_code: int, message: str, *, status: str | None = None,
                response: dict[str, Any] | None = None,
                error_code: str | None = None) -> dict[str, Any]:
    if status is None:
        status = "OK" if status_code < 400 else "ERROR"
    body: dict[str, Any] = {
        "httpStatus": HTTP_STATUS_TEXT.get(status_code, "Error"),
        "httpStatusCode": status_code,
        "status": status,
        "message": message,
    }
    if error_code:
        body["errorCode"] = error_code
    if response is not None:
        body["response"] = response
    return body


IMPORT_OPTIONS_DEFAULTS: dict[str, Any] = {
    "idSchemes": {}, "dryRun": False, "async": False, "importStrategy": "CREATE_AND_UPDATE",
    "mergeMode": "REPLACE", "reportMode": "FULL", "skipExistingCheck": False, "sharing": False,
    "skipNotifications": False, "skipAudit": False, "datasetAllowsPeriods": False,
    "strictPeriods": False, "strictDataElements": False, "strictCategoryOptionCombos": False,
    "strictAttributeOptionCombos": False, "strictOrganisationUnits": False,
    "requireCategoryOptionCombo": False, "requireAttributeOptionCombo": False,
    "skipPatternValidation": False, "ignoreEmptyCollection": False, "force": False,
    "firstRowIsHeader": True, "skipLastUpdated": False, "mergeDataValues": False,
    "skipCache": False,
}


def import_summary_message(summary: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Wrap an ImportSummary as DHIS2 2.41 does: 200 on SUCCESS, 409 on WARNING/ERROR."""
    status = summary["status"]
    if status == "SUCCESS":
        return 200, web_message(200, "Import was successful.", status="OK", response=summary)
    return 409, web_message(409, "An error occurred, please check import summary.",
                            status=status, response=summary)
