"""What the DHIS2 Android SDK (v1.14.0) puts on the wire: its ``fields=`` lists, filters and
paging, and the enum values it parses with ``valueOf`` (any other value breaks the sync).

Written from the SDK's ``network/*/…Fields.kt``, ``…Service.kt`` and ``…NetworkHandlerImpl.kt``
(see DHIS2-API-NOTES §2–§5). Its JSON parser (kotlinx, ``explicitNulls = false``,
``ignoreUnknownKeys = true``) fails only on a missing non-nullable field or a bad enum value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES
from tests.hub.cells import month

UID = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")

# BaseFields: getIdentifiableFields() / getNameableFields()
IDENTIFIABLE = "id,code,name,displayName,created,lastUpdated,deleted"
NAMEABLE = IDENTIFIABLE + ",shortName,displayShortName,description,displayDescription"

_USER_COMMON = (
    "id,code,name,displayName,created,lastUpdated,birthday,education,gender,jobTitle,surname,"
    "firstName,introduction,employer,interests,languages,email,phoneNumber,nationality,deleted,"
    f"userGroups[{IDENTIFIABLE}]")
_USER_ORG_UNITS = "organisationUnits[id,path],teiSearchOrganisationUnits[id,path]"
# UserFields.allFieldsWithOrgUnit(version): 2.38+ ...
ME_38 = f"{_USER_COMMON},username,userRoles[{IDENTIFIABLE}],{_USER_ORG_UNITS}"
# ... and at login, before the version is known: the 2.37 and 2.38 field sets together
ME_LOGIN = (f"{_USER_COMMON},userCredentials[username,userRoles[{IDENTIFIABLE}]],"
            f"username,userRoles[{IDENTIFIABLE}],{_USER_ORG_UNITS}")

SYSTEM_INFO = "serverDate,dateFormat,version,contextPath,systemName,serverTimeZoneId"
SYSTEM_SETTING_KEYS = ("keyFlag,keyStyle,keyCustomColorMobile,keyDefaultBaseMap,"
                       "analyticsFinancialYearStart,analyticsWeeklyStart")
USER_SETTINGS = "keyUiLocale,keyDbLocale"
CONSTANT = IDENTIFIABLE + ",value"
ORG_UNIT_LEVEL = IDENTIFIABLE + ",level"
ORG_UNIT = (
    f"{NAMEABLE},path,openingDate,closedDate,level,featureType,parent[id],programs[id],"
    f"dataSets[id],ancestors[id,displayName],"
    f"organisationUnitGroups[{IDENTIFIABLE},shortName,displayShortName]")
_OPERAND = "id,deleted,dataElement[id],categoryOptionCombo[id]"
DATA_SET = (
    f"{NAMEABLE},periodType,categoryCombo[id],mobile,version,expiryDays,timelyDays,"
    "notifyCompletingUser,openFuturePeriods,fieldCombinationRequired,validCompleteOnly,"
    "noValueRequiresComment,skipOffline,dataElementDecoration,renderAsTabs,renderHorizontally,"
    "displayOptions,workflow[id],"
    "dataSetElements[dataSet[id],dataElement[id],categoryCombo[id]],indicators[id],"
    f"sections[{IDENTIFIABLE},description,sortOrder,showRowTotals,showColumnTotals,"
    "disableDataElementAutoGroup,displayOptions,dataSet[id],dataElements[id],indicators[id],"
    f"greyedFields[{_OPERAND}]],"
    f"compulsoryDataElementOperands[{_OPERAND}],"
    "dataInputPeriods[period,openingDate,closingDate],access[data[write]],style[color,icon]")
DATA_ELEMENT = (
    f"{NAMEABLE},valueType,zeroIsSignificant,aggregationType,formName,domainType,"
    "displayFormName,optionSet[id],categoryCombo[id],fieldMask,style[color,icon],access[read],"
    "legendSets[id],attributeValues[value,attribute[id]]")
CATEGORY_COMBO = (f"{IDENTIFIABLE},isDefault,categories[id],"
                  f"categoryOptionCombos[{IDENTIFIABLE},categoryOptions[id]]")
CATEGORY = IDENTIFIABLE + ",categoryOptions[id],dataDimensionType"
CATEGORY_OPTION = NAMEABLE + ",startDate,endDate,access[data[read,write]]"
OPTION_SET = IDENTIFIABLE + ",version,valueType"
OPTION = IDENTIFIABLE + ",sortOrder,optionSet[id],style[color,icon]"
_EXPRESSION = "expression,description,missingValueStrategy"
VALIDATION_RULE = (f"{NAMEABLE},instruction,importance,operator,periodType,skipFormValidation,"
                   f"leftSide[{_EXPRESSION}],rightSide[{_EXPRESSION}],organisationUnitLevels")
DATA_VALUE = ("dataElement,period,orgUnit,categoryOptionCombo,attributeOptionCombo,value,"
              "storedBy,created,lastUpdated,comment,followup,deleted")
COMPLETE_REGISTRATION = ("period,dataSet,organisationUnit,attributeOptionCombo,date,storedBy,"
                         "completed")

# chunk sizes of the metadata calls (…Call.kt MAX_UID_LIST_SIZE / PAGE_SIZE)
ORG_UNIT_PAGE = 500
DATA_ELEMENTS_PER_CALL = 100
CATEGORY_COMBOS_PER_CALL = 130
CATEGORIES_PER_CALL = 90
OPTION_SETS_PER_CALL = 64
OPTION_PAGE = 5000

# enums the SDK parses with valueOf
PERIOD_TYPES = frozenset({
    "Daily", "Weekly", "WeeklyWednesday", "WeeklyThursday", "WeeklyFriday",
    "WeeklySaturday", "WeeklySunday", "BiWeekly", "Monthly", "BiMonthly", "Quarterly",
    "QuarterlyNov", "SixMonthly", "SixMonthlyApril", "SixMonthlyNov", "Yearly",
    "FinancialFeb", "FinancialApril", "FinancialJuly", "FinancialAug", "FinancialSep",
    "FinancialOct", "FinancialNov"})
VALUE_TYPES = frozenset({
    "TEXT", "LONG_TEXT", "LETTER", "PHONE_NUMBER", "EMAIL", "BOOLEAN", "TRUE_ONLY", "DATE",
    "DATETIME", "TIME", "NUMBER", "UNIT_INTERVAL", "PERCENTAGE", "INTEGER",
    "INTEGER_POSITIVE", "INTEGER_NEGATIVE", "INTEGER_ZERO_OR_POSITIVE", "TRACKER_ASSOCIATE",
    "USERNAME", "COORDINATE", "ORGANISATION_UNIT", "REFERENCE", "AGE", "URL",
    "FILE_RESOURCE", "IMAGE", "GEOJSON", "MULTI_TEXT"})
IMPORTANCES = frozenset({"LOW", "MEDIUM", "HIGH"})
OPERATORS = frozenset({"equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to",
                       "less_than", "less_than_or_equal_to", "compulsory_pair",
                       "exclusive_pair"})
MISSING_VALUE_STRATEGIES = frozenset({"NEVER_SKIP", "SKIP_IF_ANY_VALUE_MISSING",
                                      "SKIP_IF_ALL_VALUES_MISSING"})
IMPORT_STATUSES = frozenset({"SUCCESS", "WARNING", "ERROR"})
LOGIN_PAGE_LAYOUTS = frozenset({"DEFAULT", "SIDEBAR", "CUSTOM"})


def fixture(name: str) -> Any:
    return json.loads((Path(FIXTURES) / name).read_text())


def in_filter(prop: str, uids: Iterable[str]) -> str:
    """``id:in:[a,b]`` as the SDK's InFilter writes it."""
    return f"{prop}:in:[{','.join(uids)}]"


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def find_roots(org_units: Sequence[dict[str, Any]]) -> list[str]:
    """OrganisationUnitTree.findRoots: assigned units that are not below another assigned one."""
    ids = {o["id"] for o in org_units}
    roots = []
    for o in org_units:
        ancestors = [p for p in (o.get("path") or "").split("/") if p][:-1]
        if not ids.intersection(ancestors):
            roots.append(o["id"])
    return sorted(set(roots))


def parse_server_date(value: str) -> datetime:
    """DateUtils.DATE_FORMAT, ``yyyy-MM-dd'T'HH:mm:ss.SSS``."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f")


def version_ok(version: str) -> bool:
    """DHISVersion: the SDK accepts 2.30 ... 2.43 and refuses every other server."""
    m = re.match(r"^2\.(\d+)(?:\.\d+)*(?:-SNAPSHOT)?$", version)
    return m is not None and 30 <= int(m.group(1)) <= 43


def monthly_periods(open_future: int, past: int = 11) -> list[str]:
    """PeriodType.Monthly.defaultStartPeriods is -11; the future end is openFuturePeriods."""
    return [month(i) for i in range(-past, open_future + 1)]
