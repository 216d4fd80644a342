"""Static content of the demo's individual registers (DHIS2 tracker), as plain data.

Modelled on the registers Bangladesh's community clinics keep and DGHS captures in DHIS2
tracker: the maternal register (ANC, delivery, PNC), the child-health / EPI card and the
under-5 register. ``generate.py`` turns this into trackedEntityTypes, -Attributes,
programs, programStages, programRule{s,Variables,Actions} and relationshipTypes.

Schedules (days from the enrollment's incident date, ``generatedByEnrollmentDate=false``):

* maternal: incident date = first day of the last menstrual period (LMP). Bangladesh's
  four ANC contacts: ANC1 by 16 weeks, ANC2 at 24-28, ANC3 at 32, ANC4 at 36 weeks
  (``ANC_SCHEDULE``, also written into the ANC stage's description as ``BD_SCHEDULE``);
* EPI: incident date = date of birth. BCG at birth; Penta, OPV and PCV at 6 and 10 weeks;
  Penta3 and OPV3 at 14 weeks; fractional IPV at 6 and 14 weeks; PCV3 at 18 weeks (the
  national schedule since PCV's 2015 introduction, not 14); MR1 at 9 and MR2 at 15 months
  (counted as 30-day months, DHIS2 schedules in days).

Program-rule expressions reference variables by name (``#{name}`` for data elements,
``A{name}`` for attributes) and use only documented ``d2:`` functions and ``V{...}``
variables; "#{...}"/"A{...}" names here are rule-variable names, not codes.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------ option sets

# key -> (name, code, [(option code, option name)]); merged into catalog.OPTION_SETS' shape.
OPTION_SETS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "sex": ("Sex", "BD_SEX", [("FEMALE", "Female"), ("MALE", "Male"), ("OTHER", "Other")]),
    "danger_sign": ("Maternal danger sign", "BD_MAT_DANGER_SIGN", [
        ("NONE", "None"), ("BLEEDING", "Vaginal bleeding"), ("CONVULSION", "Convulsions"),
        ("HEADACHE", "Severe headache or blurred vision"), ("FEVER", "High fever"),
        ("ABD_PAIN", "Severe abdominal pain"), ("BREATHLESS", "Difficult breathing"),
        ("REDUCED_FM", "Reduced fetal movement"), ("OEDEMA", "Swelling of face and hands"),
    ]),
    "delivery_place": ("Place of delivery", "BD_DELIVERY_PLACE", [
        ("HOME", "Home"), ("CC", "Community clinic"), ("UHC", "Upazila Health Complex"),
        ("UH_FWC", "Union Health and Family Welfare Centre"),
        ("MCWC", "Mother and Child Welfare Centre"), ("DH", "District hospital"),
        ("PRIVATE", "Private clinic or hospital"), ("OTHER", "Other"),
    ]),
    "delivery_outcome": ("Delivery outcome", "BD_DELIVERY_OUTCOME", [
        ("LIVE_BIRTH", "Live birth"), ("STILLBIRTH", "Stillbirth"),
        ("ABORTION", "Miscarriage or abortion"), ("MATERNAL_DEATH", "Maternal death"),
    ]),
    "illness": ("Childhood illness", "BD_U5_ILLNESS", [
        ("DIARRHOEA", "Diarrhoea"), ("PNEUMONIA", "Pneumonia"), ("FEVER", "Fever"),
        ("OTHER", "Other"),
    ]),
    "referral_place": ("Referral facility", "BD_REFERRAL_PLACE", [
        ("UHC", "Upazila Health Complex"), ("UH_FWC", "Union Health and Family Welfare Centre"),
        ("MCWC", "Mother and Child Welfare Centre"), ("DH", "District hospital"),
        ("OTHER", "Other"),
    ]),
}

# ------------------------------------------------------- tracked entity attributes


@dataclass(frozen=True)
class Attribute:
    code: str
    name: str
    short: str
    value_type: str
    option_set: str | None = None
    unique: bool = False
    generated: bool = False
    pattern: str = ""
    description: str = ""


ATTRIBUTES: list[Attribute] = [
    Attribute("BD_NAME_BN", "Name (Bangla)", "Name (Bangla)", "TEXT",
              description="Full name in Bangla script, as the person writes it."),
    Attribute("BD_NAME_EN", "Name (English)", "Name (English)", "TEXT",
              description="Full name in Latin script (spellings vary: Fatema/Fatima, Md./"
                          "Mohammad)."),
    Attribute("BD_RELATION_NAME", "Husband's or mother's name", "Husband/mother name", "TEXT",
              description="A woman's husband's name, a child's mother's name."),
    Attribute("BD_DOB", "Date of birth", "Date of birth", "DATE"),
    Attribute("BD_AGE_YEARS", "Age (years)", "Age (years)", "INTEGER_ZERO_OR_POSITIVE",
              description="Stated age when the date of birth is unknown."),
    Attribute("BD_SEX", "Sex", "Sex", "TEXT", option_set="sex"),
    Attribute("BD_PHONE", "Mobile number", "Mobile number", "PHONE_NUMBER",
              description="11 digits, 01XXXXXXXXX."),
    Attribute("BD_BRN", "Birth registration or NID number", "BRN / NID", "TEXT",
              unique=True, generated=True, pattern='"BRN-" + SEQUENTIAL(#########)',
              description="The birth registration (BRN) or national ID number; a BRN- "
                          "number is issued from reserved values when the person has none."),
    Attribute("BD_VILLAGE", "Village", "Village", "TEXT"),
]

TET_NAME = "Person"

# ------------------------------------------------------------------ data elements


@dataclass(frozen=True)
class TDE:
    """A tracker data element: ``prefix + form_name`` is its name."""

    code: str
    form_name: str
    value_type: str
    option_set: str | None = None
    short: str | None = None


def _vaccine(v: str, label: str) -> tuple[TDE, TDE]:
    return (TDE(f"BD_EPI_{v}_GIVEN", f"{label} given", "BOOLEAN"),
            TDE(f"BD_EPI_{v}_DATE", f"{label} date", "DATE"))


# ------------------------------------------------------------------ programs


@dataclass(frozen=True)
class Stage:
    code: str
    name: str
    repeatable: bool
    min_days: int
    elements: list[tuple[str, bool]]  # (data element code, compulsory)
    interval: int | None = None  # standardInterval of a repeatable stage, days
    description: str = ""
    auto_generate: bool = True  # schedule the first event at enrollment


@dataclass(frozen=True)
class Var:
    """A program rule variable; exactly one of ``de`` / ``attr`` is set."""

    name: str
    de: str | None = None
    attr: str | None = None
    source: str = "DATAELEMENT_CURRENT_EVENT"


@dataclass(frozen=True)
class Action:
    kind: str  # programRuleActionType
    de: str | None = None  # target data element code
    attr: str | None = None  # target attribute code
    content: str = ""
    data: str = ""  # an expression (ASSIGN's value)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    condition: str
    actions: list[Action]
    stage: str | None = None  # stage code: the rule runs only in that stage's events
    priority: int = 1


@dataclass(frozen=True)
class Program:
    code: str
    name: str
    short: str
    prefix: str  # data element name prefix
    description: str
    incident_label: str
    enrollment_label: str
    only_enroll_once: bool
    attributes: list[tuple[str, bool, bool, bool]]  # (code, mandatory, searchable, in list)
    elements: list[TDE]
    stages: list[Stage]
    variables: list[Var]
    rules: list[Rule]
    color: str
    icon: str


# Days from LMP: (contact, earliest day, latest day) -- the national four-contact model.
ANC_SCHEDULE = [("ANC1", 0, 16 * 7), ("ANC2", 24 * 7, 28 * 7), ("ANC3", 32 * 7, 32 * 7),
                ("ANC4", 36 * 7, 36 * 7)]


def _schedule_note(prefix: str, schedule: list[tuple[str, int, int]]) -> str:
    parts = [f"{c}={lo}-{hi}" if lo and lo != hi else f"{c}={hi}" for c, lo, hi in schedule]
    return f"{prefix} BD_SCHEDULE days from LMP: " + " ".join(parts)


_PERSON = [  # (code, mandatory, searchable, display in list)
    ("BD_NAME_BN", True, True, True), ("BD_NAME_EN", True, True, True),
    ("BD_RELATION_NAME", False, True, True), ("BD_DOB", False, False, True),
    ("BD_AGE_YEARS", False, False, False), ("BD_SEX", False, False, False),
    ("BD_PHONE", False, True, True), ("BD_BRN", False, True, False),
    ("BD_VILLAGE", True, True, True),
]


def _person(**override: tuple[bool, bool, bool]) -> list[tuple[str, bool, bool, bool]]:
    return [(c, *override.get(c, (m, s, d))) for c, m, s, d in _PERSON]


_AGE_FROM_DOB = Rule(
    "ASSIGN_AGE_YEARS", "Age in years from the date of birth", "d2:hasValue(A{dob})",
    [Action("ASSIGN", attr="BD_AGE_YEARS", data="d2:yearsBetween(A{dob}, V{current_date})")])

MATERNAL = Program(
    "BD_MATERNAL", "Maternal register", "Maternal register", "MAT - ",
    "Pregnant women registered at the community clinic: antenatal contacts, delivery and "
    "postnatal care (DGHS MNCAH register).",
    "First day of last menstrual period (LMP)", "Registration date", False,
    _person(BD_RELATION_NAME=(True, True, True), BD_SEX=(False, False, False)),
    elements=[
        TDE("BD_MAT_GEST_WEEKS", "Gestational age (weeks)", "INTEGER_POSITIVE"),
        TDE("BD_MAT_BP_SYS", "Blood pressure systolic (mmHg)", "INTEGER_POSITIVE",
            short="BP systolic (mmHg)"),
        TDE("BD_MAT_BP_DIA", "Blood pressure diastolic (mmHg)", "INTEGER_POSITIVE",
            short="BP diastolic (mmHg)"),
        TDE("BD_MAT_WEIGHT", "Weight (kg)", "NUMBER"),
        TDE("BD_MAT_HB", "Haemoglobin (g/dL)", "NUMBER"),
        TDE("BD_MAT_DANGER", "Danger sign", "TEXT", option_set="danger_sign"),
        TDE("BD_MAT_IFA", "IFA tablets given", "BOOLEAN"),
        TDE("BD_MAT_NEXT_VISIT", "Next visit date", "DATE"),
        TDE("BD_MAT_FUNDAL_CM", "Fundal height (cm)", "INTEGER_POSITIVE"),
        TDE("BD_MAT_FHR", "Fetal heart rate (per minute)", "INTEGER_POSITIVE",
            short="Fetal heart rate"),
        TDE("BD_MAT_OEDEMA", "Oedema", "BOOLEAN"),
        TDE("BD_MAT_URINE_ALB", "Urine albumin positive", "BOOLEAN"),
        TDE("BD_MAT_CALCIUM", "Calcium tablets given", "BOOLEAN"),
        TDE("BD_MAT_TD", "Td dose given", "BOOLEAN"),
        TDE("BD_MAT_COUNSEL", "Counselled on danger signs and birth plan", "BOOLEAN",
            short="Danger signs and birth plan counselled"),
        TDE("BD_MAT_DELIV_DATE", "Delivery date", "DATE"),
        TDE("BD_MAT_DELIV_PLACE", "Place of delivery", "TEXT", option_set="delivery_place"),
        TDE("BD_MAT_DELIV_OUTCOME", "Delivery outcome", "TEXT", option_set="delivery_outcome"),
        TDE("BD_MAT_DELIV_SKILLED", "Attended by skilled provider", "BOOLEAN"),
        TDE("BD_MAT_BIRTH_WEIGHT", "Birth weight (g)", "INTEGER_POSITIVE"),
        TDE("BD_MAT_PNC_DAYS", "Days since delivery", "INTEGER_ZERO_OR_POSITIVE"),
        TDE("BD_MAT_PNC_BF", "Exclusive breastfeeding", "BOOLEAN"),
        TDE("BD_MAT_PNC_FP", "Family planning counselled", "BOOLEAN"),
        TDE("BD_MAT_PNC_VITA", "Vitamin A given to the mother", "BOOLEAN",
            short="Vitamin A (mother)"),
        TDE("BD_MAT_PNC_CORD", "Chlorhexidine cord care", "BOOLEAN"),
        TDE("BD_MAT_PNC_NB_DANGER", "Newborn danger sign", "BOOLEAN"),
    ],
    stages=[
        Stage("BD_MAT_ANC", "ANC visit", True, 16 * 7, [
            ("BD_MAT_GEST_WEEKS", True), ("BD_MAT_BP_SYS", True), ("BD_MAT_BP_DIA", True),
            ("BD_MAT_WEIGHT", True), ("BD_MAT_HB", False), ("BD_MAT_DANGER", True),
            ("BD_MAT_IFA", False), ("BD_MAT_NEXT_VISIT", False), ("BD_MAT_FUNDAL_CM", False),
            ("BD_MAT_FHR", False), ("BD_MAT_OEDEMA", False), ("BD_MAT_URINE_ALB", False),
            ("BD_MAT_CALCIUM", False), ("BD_MAT_TD", False), ("BD_MAT_COUNSEL", False)],
            # 4 weeks: never later than the next contact; the provider sets the real
            # appointment in "Next visit date".
            interval=28,
            description=_schedule_note("Antenatal contact (4 recommended).", ANC_SCHEDULE)),
        Stage("BD_MAT_DELIVERY", "Delivery", False, 40 * 7, [
            ("BD_MAT_DELIV_DATE", True), ("BD_MAT_DELIV_PLACE", True),
            ("BD_MAT_DELIV_OUTCOME", True), ("BD_MAT_DELIV_SKILLED", True),
            ("BD_MAT_BIRTH_WEIGHT", False)],
            description="Delivery, expected at 40 weeks from LMP."),
        Stage("BD_MAT_PNC", "PNC visit", True, 40 * 7 + 1, [
            ("BD_MAT_PNC_DAYS", True), ("BD_MAT_BP_SYS", False), ("BD_MAT_BP_DIA", False),
            ("BD_MAT_DANGER", True), ("BD_MAT_PNC_BF", False), ("BD_MAT_PNC_FP", False),
            ("BD_MAT_PNC_VITA", False), ("BD_MAT_PNC_CORD", False),
            ("BD_MAT_PNC_NB_DANGER", False)],
            interval=7, auto_generate=False,
            description="Postnatal contact: within 24 hours, day 2-3, day 7-14 and day 42 "
                        "after delivery."),
    ],
    variables=[
        Var("bp_systolic", de="BD_MAT_BP_SYS"), Var("bp_diastolic", de="BD_MAT_BP_DIA"),
        Var("gest_age", de="BD_MAT_GEST_WEEKS"), Var("hb", de="BD_MAT_HB"),
        Var("danger_sign", de="BD_MAT_DANGER"), Var("outcome", de="BD_MAT_DELIV_OUTCOME"),
        Var("dob", attr="BD_DOB", source="TEI_ATTRIBUTE"),
        Var("age_years", attr="BD_AGE_YEARS", source="TEI_ATTRIBUTE"),
    ],
    rules=[
        Rule("MAT_HIGH_BP", "High blood pressure",
             "#{bp_systolic} >= 140 || #{bp_diastolic} >= 90",
             [Action("SHOWWARNING", de="BD_MAT_BP_SYS",
                     content="Blood pressure 140/90 or above: check for pre-eclampsia and "
                             "refer to the UHC.")]),
        Rule("MAT_GEST_AGE_MAX", "Gestational age above 45 weeks", "#{gest_age} > 45",
             [Action("SHOWERROR", de="BD_MAT_GEST_WEEKS",
                     content="Gestational age cannot be more than 45 weeks.")],
             stage="BD_MAT_ANC"),
        Rule("MAT_SEVERE_ANAEMIA", "Severe anaemia", "d2:hasValue(#{hb}) && #{hb} < 7",
             [Action("SHOWWARNING", de="BD_MAT_HB",
                     content="Haemoglobin below 7 g/dL: severe anaemia, refer to the UHC.")],
             stage="BD_MAT_ANC"),
        Rule("MAT_DANGER_SIGN", "Danger sign present",
             "d2:hasValue(#{danger_sign}) && #{danger_sign} != 'NONE'",
             [Action("SHOWWARNING", de="BD_MAT_DANGER",
                     content="Danger sign: refer to the UHC now and call the ambulance.")]),
        Rule("MAT_BIRTH_WEIGHT_LIVE", "Birth weight only for a live birth",
             "#{outcome} != 'LIVE_BIRTH'",
             [Action("HIDEFIELD", de="BD_MAT_BIRTH_WEIGHT")], stage="BD_MAT_DELIVERY"),
        Rule("MAT_ADOLESCENT", "Adolescent pregnancy",
             "d2:hasValue(A{age_years}) && A{age_years} < 18",
             [Action("SHOWWARNING", attr="BD_AGE_YEARS",
                     content="Pregnancy under 18 years: high risk, plan delivery at a "
                             "facility.")]),
        _AGE_FROM_DOB,
    ],
    color="#C2185B", icon="pregnant_0w",
)

# (stage code, stage name, days from birth, [(vaccine key, label)])
EPI_SCHEDULE: list[tuple[str, str, int, list[tuple[str, str]]]] = [
    ("BD_EPI_BIRTH", "At birth (BCG)", 0, [("BCG", "BCG")]),
    ("BD_EPI_6W", "6 weeks", 6 * 7, [("PENTA1", "Penta 1"), ("OPV1", "OPV 1"),
                                     ("PCV1", "PCV 1"), ("FIPV1", "fIPV 1")]),
    ("BD_EPI_10W", "10 weeks", 10 * 7, [("PENTA2", "Penta 2"), ("OPV2", "OPV 2"),
                                        ("PCV2", "PCV 2")]),
    ("BD_EPI_14W", "14 weeks", 14 * 7, [("PENTA3", "Penta 3"), ("OPV3", "OPV 3"),
                                        ("FIPV2", "fIPV 2")]),
    ("BD_EPI_18W", "18 weeks", 18 * 7, [("PCV3", "PCV 3")]),
    ("BD_EPI_9M", "9 months (MR 1)", 9 * 30, [("MR1", "MR 1")]),
    ("BD_EPI_15M", "15 months (MR 2)", 15 * 30, [("MR2", "MR 2")]),
]


def _epi() -> Program:
    elements = [TDE("BD_EPI_AGE_MONTHS", "Age at visit (months)", "INTEGER_ZERO_OR_POSITIVE")]
    stages, variables, rules = [], [Var("dob", attr="BD_DOB", source="TEI_ATTRIBUTE")], []
    for code, name, days, vaccines in EPI_SCHEDULE:
        des: list[tuple[str, bool]] = [("BD_EPI_AGE_MONTHS", False)]
        for key, label in vaccines:
            given, date = _vaccine(key, label)
            elements += [given, date]
            des += [(given.code, True), (date.code, False)]
            var = f"{key.lower()}_given"
            variables.append(Var(var, de=given.code))
            rules.append(Rule(f"EPI_HIDE_{key}_DATE", f"Hide {label} date unless given",
                              f"!#{{{var}}}", [Action("HIDEFIELD", de=date.code)], stage=code))
        stages.append(Stage(code, name, False, days, des,
                            description=f"EPI contact at {name.split(' (')[0]} of age: "
                                        + ", ".join(v[1] for v in vaccines) + "."))
        if days:
            rules.append(Rule(
                f"EPI_EARLY_{code.removeprefix('BD_EPI_')}", f"{name}: dose given early",
                f"d2:hasValue(A{{dob}}) && d2:daysBetween(A{{dob}}, V{{event_date}}) < {days}",
                [Action("SHOWWARNING", content=f"The child is younger than {days} days: a dose "
                                               "given this early does not count.")],
                stage=code))
    rules += [
        Rule("EPI_AGE_MONTHS", "Age in months at the visit", "d2:hasValue(A{dob})",
             [Action("ASSIGN", de="BD_EPI_AGE_MONTHS",
                     data="d2:monthsBetween(A{dob}, V{event_date})")]),
        Rule("EPI_BEFORE_BIRTH", "Vaccination before the date of birth",
             "d2:hasValue(A{dob}) && d2:daysBetween(A{dob}, V{event_date}) < 0",
             [Action("SHOWERROR", content="The visit date is before the child's date of "
                                          "birth.")]),
    ]
    return Program(
        "BD_EPI", "Child health (EPI)", "Child health (EPI)", "EPI - ",
        "Children registered for routine immunisation (the EPI card): one contact per "
        "scheduled age, counted from the date of birth.",
        "Date of birth", "Registration date", True,
        _person(BD_DOB=(True, False, True), BD_SEX=(True, False, True)),
        elements, stages, variables, rules, color="#1976D2", icon="baby_male_0306m")


UNDER5 = Program(
    "BD_U5", "Under-5 register", "Under-5 register", "U5 - ",
    "Sick and well child visits of children under five (IMCI and growth monitoring).",
    "Date of birth", "Registration date", True,
    _person(BD_DOB=(True, False, True), BD_SEX=(True, False, True)),
    elements=[
        TDE("BD_U5_AGE_MONTHS", "Age at visit (months)", "INTEGER_ZERO_OR_POSITIVE"),
        TDE("BD_U5_WEIGHT", "Weight (kg)", "NUMBER"),
        TDE("BD_U5_HEIGHT", "Height or length (cm)", "NUMBER"),
        TDE("BD_U5_MUAC", "MUAC (mm)", "INTEGER_POSITIVE"),
        TDE("BD_U5_ILLNESS", "Illness", "TEXT", option_set="illness"),
        TDE("BD_U5_TREATMENT", "Treatment given", "LONG_TEXT"),
        TDE("BD_U5_REFERRED", "Referred", "BOOLEAN"),
        TDE("BD_U5_REFERRED_TO", "Referred to", "TEXT", option_set="referral_place"),
        TDE("BD_U5_VITA", "Vitamin A given", "BOOLEAN"),
        TDE("BD_U5_DEWORM", "Deworming tablet given", "BOOLEAN"),
        TDE("BD_U5_ORS", "ORS given", "BOOLEAN"),
        TDE("BD_U5_ZINC", "Zinc given", "BOOLEAN"),
        TDE("BD_U5_IYCF", "Feeding counselled (IYCF)", "BOOLEAN"),
    ],
    stages=[
        Stage("BD_U5_VISIT", "Child visit", True, 0, [
            ("BD_U5_AGE_MONTHS", False), ("BD_U5_WEIGHT", True), ("BD_U5_HEIGHT", False),
            ("BD_U5_MUAC", False), ("BD_U5_ILLNESS", False), ("BD_U5_TREATMENT", False),
            ("BD_U5_REFERRED", True), ("BD_U5_REFERRED_TO", False), ("BD_U5_VITA", False),
            ("BD_U5_DEWORM", False), ("BD_U5_ORS", False), ("BD_U5_ZINC", False),
            ("BD_U5_IYCF", False)],
            interval=30, auto_generate=False,
            description="A sick or growth-monitoring visit; monthly weighing under 2 years."),
    ],
    variables=[
        Var("weight", de="BD_U5_WEIGHT"), Var("muac", de="BD_U5_MUAC"),
        Var("illness", de="BD_U5_ILLNESS"), Var("referred", de="BD_U5_REFERRED"),
        Var("dob", attr="BD_DOB", source="TEI_ATTRIBUTE"),
    ],
    rules=[
        Rule("U5_HIDE_REFERRED_TO", "Referral facility only when referred", "!#{referred}",
             [Action("HIDEFIELD", de="BD_U5_REFERRED_TO")]),
        Rule("U5_SAM", "Severe acute malnutrition (MUAC)", "d2:hasValue(#{muac}) && #{muac} < 115",
             [Action("SHOWWARNING", de="BD_U5_MUAC",
                     content="MUAC below 115 mm: severe acute malnutrition, refer to the UHC.")]),
        Rule("U5_WEIGHT_RANGE", "Weight outside 0.5-40 kg",
             "d2:hasValue(#{weight}) && (#{weight} < 0.5 || #{weight} > 40)",
             [Action("SHOWERROR", de="BD_U5_WEIGHT",
                     content="A child under five weighs between 0.5 and 40 kg: check the "
                             "entry.")]),
        Rule("U5_YOUNG_PNEUMONIA", "Pneumonia under 2 months",
             "#{illness} == 'PNEUMONIA' && d2:daysBetween(A{dob}, V{event_date}) < 60",
             [Action("SHOWWARNING", de="BD_U5_ILLNESS",
                     content="Pneumonia in an infant under 2 months is a danger sign: refer "
                             "to the UHC.")]),
        Rule("U5_OVER_FIVE", "Child is five or older",
             "d2:hasValue(A{dob}) && d2:yearsBetween(A{dob}, V{event_date}) >= 5",
             [Action("SHOWERROR", content="The child is five years or older: record the visit "
                                          "in the outpatient register.")]),
        Rule("U5_AGE_MONTHS", "Age in months at the visit", "d2:hasValue(A{dob})",
             [Action("ASSIGN", de="BD_U5_AGE_MONTHS",
                     data="d2:monthsBetween(A{dob}, V{event_date})")]),
    ],
    color="#388E3C", icon="child_program",
)

PROGRAMS: list[Program] = [MATERNAL, _epi(), UNDER5]

# (code, name, from-to name, to-from name)
RELATIONSHIP_TYPES = [
    ("BD_MOTHER_CHILD", "Mother \u2013 child", "Mother of", "Child of"),
]
