"""Static content of the demo: geography, category model, data elements, data sets, rules.

This module is plain data plus ``uid()``. ``generate.py`` turns it into the DHIS2
``/api/metadata`` document and ``values.py`` reads the per-element magnitudes and
relations (``mean``, ``parent``/``frac``, ``parts``) to make plausible data values.

Place and clinic names are illustrative: the divisions, districts, upazilas and Ramu's
unions are real, village names are plausible but not an official facility register.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field

# Fixed stamps: the generated document must be byte-identical on every run.
CREATED = "2024-01-15T10:00:00.000"
LAST_UPDATED = "2024-01-15T10:00:00.000"

# DHIS2's well-known default category model (identical on every DHIS2 instance).
DEFAULT_COMBO = "bjDvmb4bfuf"
DEFAULT_CATEGORY = "GLevLNI9wkl"
DEFAULT_OPTION = "xYerKDKCefk"
DEFAULT_COC = "HllvX50cXC0"

_LETTERS = string.ascii_letters
_ALNUM = string.ascii_letters + string.digits


def uid(*parts: str) -> str:
    """A DHIS2-shaped UID (``^[a-zA-Z][a-zA-Z0-9]{10}$``) derived from a stable name.

    Hash-derived rather than random so that renaming nothing keeps every UID, and the
    hub's and national's copies of Ramu agree without sharing state.
    """
    digest = hashlib.sha256("\x1f".join(("upazila-hub-demo", *parts)).encode()).digest()
    n = int.from_bytes(digest, "big")
    n, first = divmod(n, len(_LETTERS))
    out = [_LETTERS[first]]
    for _ in range(10):
        n, r = divmod(n, len(_ALNUM))
        out.append(_ALNUM[r])
    return "".join(out)


# --------------------------------------------------------------------------- geography

LEVELS = ["Country", "Division", "District", "Upazila", "Union", "Facility"]

# Upazila center (lon, lat): facilities get a deterministic point near it.
Upazila = tuple[str, str, tuple[float, float], list[tuple[str, list[str]]]]

RAMU_UNIONS: list[tuple[str, list[str]]] = [
    # (union, villages with a community clinic); 27 clinics over the 11 unions.
    ("Fatekharkul", ["Merongloa", "Hazirpara", "Uttar Fatekharkul"]),
    ("Rajarkul", ["Sikderpara", "Ujanipara", "Dakshin Rajarkul"]),
    ("Chakmarkul", ["Jumchhari", "Chakmarkul Bazar"]),
    ("Kachhapia", ["Kachhapia Bazar", "Nolbonia", "Toitong"]),
    ("Eidgar", ["Eidgar Bazar", "Baishari"]),
    ("Garjania", ["Garjania Bazar", "Beltali", "Thimchhari"]),
    ("Joarianala", ["Joarianala Bazar", "Pankhali"]),
    ("Kauarkhop", ["Kauarkhop Sadar", "Laxmir Char"]),
    ("Khuniapalong", ["Pechar Dwip", "Dhepir Chhara"]),
    ("Dakshin Mithachhari", ["Uttar Mithachhari", "Chainda", "Hajirpara Mithachhari"]),
    ("Dhoapalong", ["Dhoapalong Sadar", "Khuniapara"]),
]
RAMU_UHC_UNION = "Fatekharkul"  # Ramu sadar: the UHC sits in this union


def _uz(name: str, geo: str, center: tuple[float, float], unions: dict[str, int]) -> Upazila:
    # Other upazilas: clinics named "<Union> <para> Community Clinic".
    paras = ["Uttarpara", "Dakshinpara", "Purbapara", "Paschimpara", "Majhpara", "Mollapara"]
    spec = [(u, [f"{u} {paras[i]}" for i in range(n)]) for u, n in unions.items()]
    return (name, geo, center, spec)


# division -> district -> upazilas; geo codes follow the BBS pattern (div+dist+upazila).
GEOGRAPHY: list[tuple[str, str, list[tuple[str, str, list[Upazila]]]]] = [
    ("Barishal", "10", [
        ("Patuakhali", "1078", [
            _uz("Kalapara", "107866", (90.23, 21.99), {"Dhankhali": 2, "Lalua": 2}),
        ]),
    ]),
    ("Chattogram", "20", [
        ("Cox's Bazar", "2022", [
            ("Ramu", "202266", (92.10, 21.43), RAMU_UNIONS),
            _uz("Ukhia", "202294", (92.10, 21.28),
                {"Jalia Palong": 2, "Raja Palong": 2, "Palong Khali": 2}),
            _uz("Teknaf", "202290", (92.30, 20.86), {"Hnila": 2, "Whykong": 2, "Sabrang": 1}),
            _uz("Chakaria", "202216", (92.08, 21.77),
                {"Dulahazara": 2, "Harbang": 2, "Kakara": 2}),
        ]),
        ("Chattogram", "2015", [
            _uz("Sitakunda", "201586", (91.66, 22.62), {"Barabkunda": 2, "Kumira": 2}),
        ]),
        ("Cumilla", "2019", [
            _uz("Daudkandi", "201936", (90.72, 23.53), {"Gouripur": 2, "Padua": 2}),
        ]),
        ("Bandarban", "2003", [
            _uz("Lama", "200351", (92.20, 21.78), {"Aziznagar": 2, "Fasyakhali": 1, "Sarai": 1}),
        ]),
    ]),
    ("Dhaka", "30", [
        ("Gazipur", "3033", [
            _uz("Kaliakair", "303332", (90.24, 24.07), {"Atabaha": 2, "Mouchak": 2}),
        ]),
    ]),
    ("Khulna", "40", [
        ("Jashore", "4041", [
            _uz("Jhikargacha", "404123", (89.10, 23.10), {"Gadkhali": 2, "Nabaran": 2}),
        ]),
    ]),
    ("Mymensingh", "45", [
        ("Netrokona", "4572", [
            _uz("Kendua", "457247", (90.84, 24.65), {"Asujia": 2, "Mashka": 1, "Roailbari": 1}),
        ]),
    ]),
    ("Rajshahi", "50", [
        ("Bogura", "5010", [
            _uz("Sariakandi", "501081", (89.58, 24.88), {"Bohail": 2, "Chaluabari": 2}),
        ]),
    ]),
    ("Rangpur", "55", [
        ("Kurigram", "5549", [
            _uz("Chilmari", "554908", (89.68, 25.56), {"Raniganj": 2, "Thanahat": 2}),
        ]),
    ]),
    ("Sylhet", "60", [
        ("Sunamganj", "6090", [
            _uz("Derai", "609029", (91.34, 24.80), {"Bhatipara": 2, "Rafinagar": 2}),
        ]),
    ]),
]

RAMU_PATH = ("Bangladesh", "Chattogram", "Cox's Bazar", "Ramu")
CHCP_CLINIC = (*RAMU_PATH, "Fatekharkul", "Merongloa Community Clinic")


def ou_uid(path: tuple[str, ...]) -> str:
    return uid("organisationUnit", *path)


# ------------------------------------------------------------------ category model

# category key -> (name, code, [(option name, option code, weight)])
# weight: the share of a total that falls in that option, used by values.py.
CATEGORIES: dict[str, tuple[str, str, list[tuple[str, str, float]]]] = {
    "sex": ("Sex", "SEX", [("Male", "M", 0.44), ("Female", "F", 0.56)]),
    "age": ("Age group", "AGE", [
        ("<1y", "AGE_LT1", 0.08), ("1-4y", "AGE_1_4", 0.16), ("5-14y", "AGE_5_14", 0.18),
        ("15-49y", "AGE_15_49", 0.38), ("50+y", "AGE_50P", 0.20),
    ]),
    "wage": ("Woman's age", "WAGE", [
        ("<20y", "WAGE_LT20", 0.22), ("20-24y", "WAGE_20_24", 0.30),
        ("25-34y", "WAGE_25_34", 0.31), ("35+y", "WAGE_35P", 0.17),
    ]),
    "u5": ("Under-5 age", "U5AGE", [("0-11m", "U5_0_11M", 0.40), ("12-59m", "U5_12_59M", 0.60)]),
    "client": ("FP client type", "FPCLIENT", [
        ("New", "FP_NEW", 0.35), ("Revisit", "FP_REV", 0.65),
    ]),
    "adol": ("Adolescent age", "ADOL", [
        ("10-14y", "ADOL_10_14", 0.45), ("15-19y", "ADOL_15_19", 0.55),
    ]),
    "td": ("Td target group", "TDGROUP", [
        ("Pregnant woman", "TD_PREG", 0.45), ("Non-pregnant woman 15-49y", "TD_NONPREG", 0.55),
    ]),
}

# combo key -> (name, code, [category keys in order]). COC names join option names with
# ", " in this order, as DHIS2 does ("Female, 15-49y").
COMBOS: dict[str, tuple[str, str, list[str]]] = {
    "sex": ("Sex", "SEX", ["sex"]),
    "age": ("Age group", "AGE", ["age"]),
    "sex_age": ("Sex and Age group", "SEX_AGE", ["sex", "age"]),
    "wage": ("Woman's age", "WAGE", ["wage"]),
    "u5_sex": ("Under-5 age and Sex", "U5AGE_SEX", ["u5", "sex"]),
    "client": ("FP client type", "FPCLIENT", ["client"]),
    "client_wage": ("FP client type and Woman's age", "FPCLIENT_WAGE", ["client", "wage"]),
    "adol": ("Adolescent age", "ADOL", ["adol"]),
    "adol_sex": ("Adolescent age and Sex", "ADOL_SEX", ["adol", "sex"]),
    "td": ("Td target group", "TDGROUP", ["td"]),
}

# ------------------------------------------------------------------- option sets

OPTION_SETS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "stock": ("Stock status", "STOCK_STATUS", [
        ("ADEQUATE", "Adequate"), ("LOW", "Low"), ("STOCKOUT", "Stock-out"),
    ]),
}

# ------------------------------------------------------------------ data elements


@dataclass(frozen=True)
class DE:
    """One aggregate data element and how values.py should fill it.

    mean: expected monthly total for an average facility, before disaggregation.
    parent/frac: this element counts a subset of ``parent`` (same combo), so each cell
    is drawn as Binomial(parent cell, frac): it can never exceed the parent.
    parts: this element is the sum of those elements, cell by cell.
    """

    code: str
    form_name: str
    combo: str = "default"
    value_type: str = "INTEGER_ZERO_OR_POSITIVE"
    mean: float = 0.0
    parent: str | None = None
    frac: float = 0.0
    parts: tuple[str, ...] = ()
    zero_sig: bool = False
    option_set: str | None = None
    season: str | None = None  # "monsoon", "summer", "winter": scales the mean by month
    aggregation: str | None = None  # default derived from value type
    short: str | None = None
    cap: int | None = None  # upper bound of a count (e.g. working days)
    range: tuple[float, float] | None = None  # uniform draw: days, staff, %, CYP, +/- stock


def _i(code: str, form_name: str, combo: str = "default", mean: float = 0.0, **kw: object) -> DE:
    return DE(code, form_name, combo, mean=mean, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Form:
    code: str
    name: str
    short: str
    prefix: str  # data element name prefix, e.g. "CC - "
    target: str  # "cc" or "uhc": which facilities get it
    expiry_days: int
    open_future: int  # 1 = the current month is open too, so tallies can go in as it runs
    timely_days: int
    sections: list[tuple[str, list[DE]]] = field(default_factory=list)
    input_periods: list[tuple[str, str, str]] = field(default_factory=list)

    def elements(self) -> list[DE]:
        return [de for _, des in self.sections for de in des]


FORM1 = Form(
    "CC_FORM1", "CC Form-1 Services", "CC F1 Services", "CC - ", "cc", 15, 1, 10,
    sections=[
        ("General outpatient", [
            _i("CC_OPD_TOTAL", "Patients attended", "sex_age", 820),
            _i("CC_OPD_NEW", "New patients", "sex_age", parent="CC_OPD_TOTAL", frac=0.55),
            _i("CC_OPD_REFERRED", "Patients referred to UHC", "sex_age",
               parent="CC_OPD_TOTAL", frac=0.08),
            _i("CC_NUTR_COUNSEL", "Nutrition counselling", "sex_age", 90),
        ]),
        ("Common illnesses", [
            _i("CC_ARI", "Acute respiratory infection", "sex_age", 130, season="winter"),
            _i("CC_DIARR", "Diarrhoea", "sex_age", 80, season="summer"),
            _i("CC_FEVER", "Fever", "sex_age", 150, season="monsoon"),
            _i("CC_SKIN", "Skin disease", "sex_age", 100),
            _i("CC_GASTRIC", "Gastritis / peptic ulcer", "sex_age", 90),
            _i("CC_ANAEMIA", "Anaemia", "sex_age", 60),
            _i("CC_EYE", "Eye disease", "sex_age", 65),
            _i("CC_INJURY", "Injury", "sex_age", 60),
            _i("CC_MAL_TEST", "Malaria RDT tested", "sex_age", 90, season="monsoon"),
            _i("CC_MAL_POS", "Malaria RDT positive", "sex", parent="CC_MAL_TEST", frac=0.07),
        ]),
        ("NCD screening", [
            _i("CC_HTN_SCR", "Hypertension screened (30+ years)", "sex", 130),
            _i("CC_HTN_DET", "Hypertension detected", "sex", parent="CC_HTN_SCR", frac=0.18),
            _i("CC_DM_SCR", "Diabetes screened (30+ years)", "sex", 80),
            _i("CC_DM_DET", "Diabetes detected", "sex", parent="CC_DM_SCR", frac=0.12),
            _i("CC_TB_REF", "Presumptive TB referred", "sex", 5),
        ]),
        ("Community engagement", [
            _i("CC_HE_SESSIONS", "Health education sessions held", mean=12),
            _i("CC_HE_PART", "Health education participants", "sex", 190),
            _i("CC_CG_MEETING", "Community Group meeting held", value_type="BOOLEAN"),
            _i("CC_CSG_MEETINGS", "Community Support Group meetings", mean=4),
            _i("CC_BIRTHS", "Births reported in catchment", "sex", 9),
            _i("CC_DEATHS", "Deaths reported in catchment", "sex", 2, zero_sig=True),
        ]),
        ("Clinic management", [
            _i("CC_OPEN_DAYS", "Days clinic open", zero_sig=True, range=(19, 26), cap=26,
               aggregation="AVERAGE"),
            _i("CC_CHCP_DAYS", "Days CHCP present", parent="CC_OPEN_DAYS", frac=0.95,
               zero_sig=True, aggregation="AVERAGE"),
            _i("CC_STOCK_STATUS", "Essential drug stock status", value_type="TEXT",
               option_set="stock"),
            _i("CC_PCM_STOCKOUT", "Paracetamol stock-out days", mean=1, zero_sig=True, cap=28,
               aggregation="AVERAGE"),
            _i("CC_PCM_ADJ", "Paracetamol stock adjustment (tablets)", value_type="INTEGER",
               range=(-60, 60)),
            _i("CC_SOLAR", "Solar power functional", value_type="TRUE_ONLY"),
            _i("CC_LAST_SUPPLY", "Last drug supply received", value_type="DATE"),
            _i("CC_SATISFACTION", "Client satisfaction score (%)", value_type="PERCENTAGE",
               range=(70, 98)),
            _i("CC_REMARKS", "Remarks", value_type="TEXT"),
        ]),
    ],
)

FORM2 = Form(
    "CC_FORM2", "CC Form-2 Maternal & Newborn (ANC/PNC)", "CC F2 Maternal & Newborn", "CC - ",
    "cc", 15, 1, 10,
    sections=[
        ("Antenatal care", [
            _i("CC_PREG_REG", "Pregnant women registered", "wage", 34),
            _i("CC_ANC1", "ANC 1st visit", "wage", 32, short="ANC 1st visit"),
            _i("CC_ANC2", "ANC 2nd visit", "wage", parent="CC_ANC1", frac=0.9),
            _i("CC_ANC3", "ANC 3rd visit", "wage", parent="CC_ANC2", frac=0.88),
            _i("CC_ANC4", "ANC 4th visit", "wage", parent="CC_ANC3", frac=0.85),
            _i("CC_ANC_BP", "Pregnant women BP measured", "wage", 48),
            _i("CC_ANC_WEIGHT", "Pregnant women weighed", "wage", 46),
            _i("CC_ANC_HB", "Pregnant women Hb tested", "wage", 40),
            _i("CC_ANC_ANAEMIA", "Anaemia in pregnancy", "wage", parent="CC_ANC_HB", frac=0.35),
            _i("CC_ANC_URINE", "Urine albumin tested", "wage", 26),
            _i("CC_ANC_GDM", "Gestational diabetes screened", "wage", 20),
            _i("CC_ANC_IFA", "IFA tablets given in pregnancy", "wage", 44),
            _i("CC_ANC_CALCIUM", "Calcium tablets given in pregnancy", "wage", 38),
            _i("CC_ANC_DEWORM", "Deworming tablet given in pregnancy", "wage", 22),
            _i("CC_ANC_NUTR", "Nutrition counselling in pregnancy", "wage", 36),
            _i("CC_ANC_COUNSEL", "Birth preparedness counselling", "wage", 34),
            _i("CC_ANC_HOMEVISIT", "ANC home visits", "wage", 20),
            _i("CC_ANC_USG_REF", "Ultrasound referrals", "wage", 18),
            _i("CC_ANC_DANGER", "Pregnancy danger signs referred", "wage", 16),
        ]),
        ("Delivery", [
            _i("CC_DELIV_FAC", "Facility deliveries", "wage", 18),
            _i("CC_DELIV_HOME", "Home deliveries", "wage", 14),
            _i("CC_DELIV", "Deliveries in catchment", "wage",
               parts=("CC_DELIV_FAC", "CC_DELIV_HOME")),
            _i("CC_DELIV_SBA", "Deliveries by skilled birth attendant", "wage",
               parent="CC_DELIV", frac=0.7),
            _i("CC_MISO", "Misoprostol distributed", "wage", 20),
            _i("CC_DELIVERY_KITS", "Clean delivery kits distributed", mean=10),
            _i("CC_EDD_NEXT", "Pregnant women with EDD next month", mean=20),
        ]),
        ("Postnatal care", [
            _i("CC_PNC1", "PNC 1st visit (mother)", "wage", 32),
            _i("CC_PNC2", "PNC 2nd visit (mother)", "wage", parent="CC_PNC1", frac=0.85),
            _i("CC_PNC3", "PNC 3rd visit (mother)", "wage", parent="CC_PNC2", frac=0.85),
            _i("CC_PNC4", "PNC 4th visit (mother)", "wage", parent="CC_PNC3", frac=0.85),
            _i("CC_PNC_IFA", "IFA given postpartum", "wage", parent="CC_PNC1", frac=0.75),
            _i("CC_PPFP_COUNSEL", "Postpartum FP counselling", "wage", 18),
            _i("CC_PNC_BP", "Postpartum BP measured", "wage", parent="CC_PNC1", frac=0.8),
            _i("CC_PNC_COUNSEL", "Newborn care counselling of mothers", "wage", 20),
        ]),
        ("Newborn", [
            _i("CC_LIVE_BIRTHS", "Live births", "sex", 30),
            _i("CC_LBW", "Low birth weight (<2.5 kg)", "sex", parent="CC_LIVE_BIRTHS", frac=0.2),
            _i("CC_NB_WEIGHED", "Newborns weighed", "sex", parent="CC_LIVE_BIRTHS", frac=0.75),
            _i("CC_NB_CHX", "Chlorhexidine applied to cord", "sex",
               parent="CC_LIVE_BIRTHS", frac=0.8),
            _i("CC_NB_BF1H", "Breastfed within 1 hour", "sex", parent="CC_LIVE_BIRTHS", frac=0.7),
            _i("CC_NB_PNC1", "Newborn PNC 1st visit", "sex", parent="CC_LIVE_BIRTHS", frac=0.85),
            _i("CC_NB_PNC2", "Newborn PNC 2nd visit", "sex", parent="CC_NB_PNC1", frac=0.85),
            _i("CC_NB_PNC3", "Newborn PNC 3rd visit", "sex", parent="CC_NB_PNC2", frac=0.85),
            _i("CC_NB_PNC4", "Newborn PNC 4th visit", "sex", parent="CC_NB_PNC3", frac=0.85),
            _i("CC_NB_DANGER", "Newborn danger signs referred", "sex", 6),
            _i("CC_NB_EBF_COUNSEL", "Exclusive breastfeeding counselling", "sex", 16),
            _i("CC_STILL_BIRTHS", "Stillbirths", "sex", 0.3, zero_sig=True),
            _i("CC_NB_DEATHS", "Neonatal deaths", "sex", 0.3, zero_sig=True),
        ]),
        ("Mortality and coverage", [
            _i("CC_MAT_DEATHS", "Maternal deaths", mean=0.05, zero_sig=True),
            _i("CC_PPH_REF", "Postpartum haemorrhage referred", mean=0.5, zero_sig=True),
            _i("CC_ECLAMPSIA_REF", "Eclampsia referred", mean=0.3, zero_sig=True),
            _i("CC_ANC4_COVERAGE", "ANC4 coverage (%)", value_type="PERCENTAGE", range=(35, 80)),
        ]),
    ],
)

FORM3 = Form(
    "CC_FORM3", "CC Form-3 EPI & Child Health", "CC F3 EPI & Child Health", "CC - ",
    "cc", 15, 1, 10,
    sections=[
        ("Child immunization", [
            _i("CC_BCG", "BCG", "sex", 12),
            _i("CC_PENTA1", "Penta 1st dose", "sex", 12),
            _i("CC_PENTA2", "Penta 2nd dose", "sex", parent="CC_PENTA1", frac=0.95),
            _i("CC_PENTA3", "Penta 3rd dose", "sex", parent="CC_PENTA2", frac=0.95),
            _i("CC_OPV1", "OPV 1st dose", "sex", 12),
            _i("CC_OPV2", "OPV 2nd dose", "sex", parent="CC_OPV1", frac=0.95),
            _i("CC_OPV3", "OPV 3rd dose", "sex", parent="CC_OPV2", frac=0.95),
            _i("CC_PCV1", "PCV 1st dose", "sex", 12),
            _i("CC_PCV2", "PCV 2nd dose", "sex", parent="CC_PCV1", frac=0.95),
            _i("CC_PCV3", "PCV 3rd dose", "sex", parent="CC_PCV2", frac=0.95),
            _i("CC_FIPV1", "fIPV 1st dose", "sex", 11),
            _i("CC_FIPV2", "fIPV 2nd dose", "sex", parent="CC_FIPV1", frac=0.9),
            _i("CC_MR1", "MR 1st dose", "sex", 11),
            _i("CC_MR2", "MR 2nd dose", "sex", 10),
            _i("CC_FIC", "Fully immunized children", "sex", parent="CC_MR1", frac=0.92),
            _i("CC_ZERO_DOSE", "Zero-dose children identified", "sex", 4),
        ]),
        ("Td immunization", [
            _i("CC_TD1", "Td 1st dose", "td", 22),
            _i("CC_TD2", "Td 2nd dose", "td", parent="CC_TD1", frac=0.85),
            _i("CC_TD3", "Td 3rd dose", "td", parent="CC_TD2", frac=0.8),
            _i("CC_TD4", "Td 4th dose", "td", parent="CC_TD3", frac=0.8),
            _i("CC_TD5", "Td 5th dose", "td", parent="CC_TD4", frac=0.8),
        ]),
        ("EPI sessions", [
            _i("CC_EPI_PLANNED", "EPI sessions planned", mean=8, zero_sig=True),
            _i("CC_EPI_HELD", "EPI sessions held", parent="CC_EPI_PLANNED", frac=0.95,
               zero_sig=True),
            _i("CC_EPI_OUTREACH", "Outreach EPI sessions held", mean=6),
            _i("CC_EPI_DEFAULTERS", "EPI defaulters traced", mean=5),
            _i("CC_AEFI", "AEFI reported", mean=0.1, zero_sig=True),
            _i("CC_COLD_CHAIN", "Cold box / vaccine carrier functional", value_type="BOOLEAN"),
            _i("CC_VACC_WASTAGE", "Vaccine wastage rate (%)", value_type="PERCENTAGE",
               range=(5, 25)),
            _i("CC_PENTA_DROPOUT", "Penta1-Penta3 dropout rate (%)", value_type="PERCENTAGE",
               range=(1, 12)),
        ]),
        ("Child health (IMCI)", [
            _i("CC_U5_ATTENDED", "Children under 5 attended", "u5_sex", 150),
            _i("CC_U5_PNEUMONIA", "Pneumonia (U5)", "u5_sex", 24, season="winter"),
            _i("CC_U5_AMOX", "Amoxicillin DT given (U5)", "u5_sex",
               parent="CC_U5_PNEUMONIA", frac=0.95),
            _i("CC_U5_COLD", "Cough or cold, no pneumonia (U5)", "u5_sex", 60, season="winter"),
            _i("CC_U5_DIARR_SOME", "Diarrhoea with some dehydration (U5)", "u5_sex", 16,
               season="summer"),
            _i("CC_U5_DIARR_NO", "Diarrhoea, no dehydration (U5)", "u5_sex", 34, season="summer"),
            _i("CC_U5_ORS_ZINC", "ORS and zinc given (U5)", "u5_sex", 44, season="summer"),
            _i("CC_U5_FEVER", "Fever (U5)", "u5_sex", 40, season="monsoon"),
            _i("CC_U5_MAM", "Moderate acute malnutrition (U5)", "u5_sex", 14),
            _i("CC_U5_EAR", "Ear problem (U5)", "u5_sex", 12),
            _i("CC_U5_EYE", "Eye infection (U5)", "u5_sex", 12),
            _i("CC_U5_SKIN", "Skin infection (U5)", "u5_sex", 20),
            _i("CC_U5_WORM", "Worm infestation (U5)", "u5_sex", 20),
            _i("CC_U5_ANAEMIA", "Anaemia (U5)", "u5_sex", 14),
            _i("CC_U5_REFERRED", "Children referred (U5)", "u5_sex", 12),
            _i("CC_U5_FOLLOWUP", "Follow-up visits (U5)", "u5_sex", 30),
            _i("CC_U5_PNEUMONIA_FU", "Pneumonia follow-up (U5)", "u5_sex",
               parent="CC_U5_PNEUMONIA", frac=0.7),
            _i("CC_U5_DIARR_FU", "Diarrhoea follow-up (U5)", "u5_sex",
               parent="CC_U5_DIARR_NO", frac=0.5),
            _i("CC_U5_VSD_REF", "Very severe disease referred (U5)", mean=2, zero_sig=True),
            _i("CC_U5_PSBI", "Possible serious bacterial infection", mean=0.8, zero_sig=True),
            _i("CC_U5_SAM_REF", "Severe acute malnutrition referred", mean=1, zero_sig=True),
        ]),
        ("Growth and development", [
            _i("CC_GMP_WEIGHED", "Children weighed (GMP)", "u5_sex", 90),
            _i("CC_GMP_UNDERWT", "Underweight children", "u5_sex",
               parent="CC_GMP_WEIGHED", frac=0.22),
            _i("CC_GMP_FALTER", "Growth faltering identified", "u5_sex",
               parent="CC_GMP_WEIGHED", frac=0.12),
            _i("CC_DEV_SCREEN", "Developmental screening", "u5_sex", 22),
            _i("CC_BIRTH_REG_REF", "Birth registration referrals", "sex", 6),
            _i("CC_MUAC_SCREENED", "MUAC screened", "u5_sex", 70),
            _i("CC_IYCF_COUNSEL", "IYCF counselling", "u5_sex", 44),
            _i("CC_MNP", "Micronutrient powder given", "u5_sex", 30),
            _i("CC_ECD_COUNSEL", "Early childhood development counselling", "u5_sex", 26,
               short="ECD counselling"),
            _i("CC_HANDWASH_DEMO", "Hand washing demonstrations", mean=8),
        ]),
    ],
)

FORM4 = Form(
    "CC_FORM4", "CC Form-4 Family Planning", "CC F4 Family Planning", "CC - ", "cc", 15, 1, 10,
    sections=[
        ("FP clients", [
            _i("CC_FP_COUNSEL", "Women counselled on FP", "client_wage", 150),
            _i("CC_FP_MEC", "Women screened for method eligibility", "client_wage", 130),
            _i("CC_FP_BP", "BP checked before hormonal method", "client_wage", 120),
            _i("CC_FP_PILL", "Oral pill users", "client_wage", 220),
            _i("CC_FP_INJ", "Injectable users", "client_wage", 110),
            _i("CC_FP_FOLLOWUP", "FP follow-up visits", "client_wage", 140),
            _i("CC_FP_CONDOM", "Condom users", "client", 60),
            _i("CC_FP_ECP", "Emergency contraceptive pill users", "wage", 18, short="ECP users"),
            _i("CC_FP_PPFP", "Postpartum FP acceptors", "wage", 20),
            _i("CC_FP_IMPLANT_REF", "Implant referrals", "wage", 16),
            _i("CC_FP_IUD_REF", "IUD referrals", "wage", 14),
            _i("CC_FP_TUB_REF", "Tubectomy referrals", mean=2),
            _i("CC_FP_NSV_REF", "NSV referrals", mean=2),
            _i("CC_FP_PAFP", "Post-abortion FP acceptors", mean=2),
        ]),
        ("Side effects and discontinuation", [
            _i("CC_FP_PILL_SIDE", "Pill side-effects managed", "wage", 14),
            _i("CC_FP_INJ_SIDE", "Injectable side-effects managed", "wage", 12),
            _i("CC_FP_PILL_DISC", "Pill discontinued", "wage", 14),
            _i("CC_FP_INJ_DISC", "Injectable discontinued", "wage", 14),
            _i("CC_FP_INJ_DUE", "Injectable clients due next month", "wage", 60),
        ]),
        ("Reproductive health", [
            _i("CC_RH_PREG_TEST", "Pregnancy tests performed", "wage", 36),
            _i("CC_RH_PREG_POS", "Pregnancy tests positive", "wage",
               parent="CC_RH_PREG_TEST", frac=0.4),
            _i("CC_RH_MR_COUNSEL", "Menstrual regulation counselling", "wage", 14),
            _i("CC_RH_VIA_REF", "Cervical cancer (VIA) referrals", "wage", 16),
            _i("CC_RH_CBE", "Clinical breast examination", "wage", 20),
            _i("CC_RH_ANAEMIA", "Anaemia screening of FP clients", "wage", 26),
            _i("CC_RH_RTI", "RTI/STI cases", "sex", 12),
            _i("CC_RH_NEWLY_MARRIED", "Newly married couples counselled", mean=6),
            _i("CC_RH_INFERTILITY", "Infertility cases referred", mean=2),
        ]),
        ("Adolescent health", [
            _i("CC_ADOL_ATTENDED", "Adolescents attended", "adol_sex", 60),
            _i("CC_ADOL_ASRH", "Adolescents counselled on ASRH", "adol_sex", 40),
            _i("CC_ADOL_NUTR", "Adolescents nutrition screened", "adol_sex", 30),
            _i("CC_ADOL_CHILD_MARRIAGE", "Child marriage prevention counselling", "adol_sex", 24),
            _i("CC_ADOL_CORNER", "Adolescent friendly corner visits", "adol_sex", 30),
            _i("CC_ADOL_IFA", "Adolescent girls given IFA", "adol", 26),
            _i("CC_ADOL_MHM", "Adolescent girls counselled on menstrual hygiene", "adol", 20,
               short="Menstrual hygiene counselling"),
        ]),
        ("Commodities", [
            _i("CC_FP_PILL_DIST", "Oral pill cycles distributed", mean=420),
            _i("CC_FP_CONDOM_DIST", "Condom pieces distributed", mean=600),
            _i("CC_FP_INJ_DIST", "Injectable vials used", mean=110),
            _i("CC_FP_ECP_DIST", "ECP doses distributed", mean=14),
            _i("CC_FP_PILL_SOH", "Oral pill cycles in stock", mean=500, aggregation="AVERAGE"),
            _i("CC_FP_CONDOM_SOH", "Condom pieces in stock", mean=900, aggregation="AVERAGE"),
            _i("CC_FP_INJ_SOH", "Injectable vials in stock", mean=90, aggregation="AVERAGE"),
            _i("CC_FP_ECP_SOH", "ECP doses in stock", mean=20, aggregation="AVERAGE"),
            _i("CC_FP_PILL_SO_DAYS", "Oral pill stock-out days", mean=0.5, zero_sig=True, cap=28,
               aggregation="AVERAGE"),
            _i("CC_FP_CONDOM_SO_DAYS", "Condom stock-out days", mean=0.5, zero_sig=True, cap=28,
               aggregation="AVERAGE"),
            _i("CC_FP_INJ_SO_DAYS", "Injectable stock-out days", mean=1, zero_sig=True, cap=28,
               aggregation="AVERAGE"),
            _i("CC_FP_ECP_SO_DAYS", "ECP stock-out days", mean=1, zero_sig=True, cap=28,
               aggregation="AVERAGE"),
            _i("CC_FP_STOCK_STATUS", "FP commodity stock status", value_type="TEXT",
               option_set="stock"),
        ]),
        ("Coverage", [
            _i("CC_FP_ELIGIBLE", "Eligible couples in catchment", mean=1150,
               aggregation="AVERAGE"),
            _i("CC_FP_CYP", "Couple years of protection", value_type="NUMBER", range=(12, 45)),
            _i("CC_FP_CPR", "Contraceptive prevalence rate (%)", value_type="PERCENTAGE",
               range=(55, 78)),
            _i("CC_FP_SATELLITE", "FP satellite sessions", mean=4),
            _i("CC_FP_HOME_VISITS", "FP home visits", mean=24),
            _i("CC_FP_GROUP_SESSIONS", "FP group sessions", mean=4),
        ]),
    ],
)

UHC_FORM = Form(
    "UHC_MONTHLY", "UHC Monthly Report", "UHC Monthly", "UHC - ", "uhc", 0, 1, 15,
    # No data input periods: once a data set has any, only those periods are open (E7643),
    # and fixed dates would close the demo's UHC form for every current month.
    sections=[
        ("Outpatient and emergency", [
            _i("UHC_OPD", "Outpatients attended", "sex_age", 6500),
            _i("UHC_EMERGENCY", "Emergency patients", "sex_age", 950),
            _i("UHC_REFERRED_OUT", "Patients referred to district hospital", "sex_age", 60),
        ]),
        ("Inpatient", [
            _i("UHC_ADMISSIONS", "Admissions", "sex_age", 420),
            _i("UHC_DISCHARGES", "Discharges", "sex_age", parent="UHC_ADMISSIONS", frac=0.93),
            _i("UHC_IP_DEATHS", "Inpatient deaths", "sex_age", parent="UHC_ADMISSIONS",
               frac=0.01, zero_sig=True),
            _i("UHC_BEDS", "Beds available", range=(31, 50), aggregation="AVERAGE"),
            _i("UHC_IP_DAYS", "Inpatient days", mean=1450),
            _i("UHC_BOR", "Bed occupancy rate (%)", value_type="PERCENTAGE", range=(70, 100)),
        ]),
        ("Morbidity", [
            _i("UHC_DIARRHOEA", "Diarrhoea", "sex_age", 180, season="summer"),
            _i("UHC_PNEUMONIA", "Pneumonia", "sex_age", 90, season="winter"),
            _i("UHC_DOG_BITE", "Dog bite / ARV given", "sex_age", 45),
            _i("UHC_SNAKE_BITE", "Snake bite", "sex_age", 10, season="monsoon"),
            _i("UHC_RTA", "Road traffic injury", "sex_age", 35),
            _i("UHC_DROWNING", "Drowning", "sex_age", 3, zero_sig=True, season="monsoon"),
            _i("UHC_HTN", "Hypertension", "sex_age", 220),
            _i("UHC_DM", "Diabetes mellitus", "sex_age", 140),
            _i("UHC_COPD", "COPD / asthma", "sex_age", 60),
            _i("UHC_MENTAL", "Mental health conditions", "sex_age", 25),
            _i("UHC_TB", "TB cases notified", "sex_age", 12),
            _i("UHC_MAL_TEST", "Malaria tested (RDT/microscopy)", "sex_age", 320,
               season="monsoon"),
            _i("UHC_MAL_POS", "Malaria positive", "sex_age", parent="UHC_MAL_TEST", frac=0.05),
            _i("UHC_DENGUE", "Dengue", "sex_age", 12, season="monsoon"),
        ]),
        ("Maternal health", [
            _i("UHC_ANC1", "ANC 1st visit", "wage", 45),
            _i("UHC_ANC4", "ANC 4th visit", "wage", parent="UHC_ANC1", frac=0.6),
            _i("UHC_PNC1", "PNC 1st visit (mother)", "wage", 40),
            _i("UHC_DELIV_NORMAL", "Normal deliveries", "wage", 65),
            _i("UHC_DELIV_CS", "Caesarean deliveries", "wage", 16),
            _i("UHC_ECLAMPSIA_MGSO4", "Eclampsia managed with MgSO4", "wage", 3),
            _i("UHC_PPH", "Postpartum haemorrhage managed", "wage", 5),
            _i("UHC_MR", "Menstrual regulation", "wage", 20),
            _i("UHC_PAC", "Post-abortion care", "wage", 8),
            _i("UHC_FP_IUD", "IUD inserted", "wage", 10),
            _i("UHC_FP_IMPLANT", "Implant inserted", "wage", 12),
            _i("UHC_TUBECTOMY", "Tubectomy", "wage", 6),
            _i("UHC_MAT_DEATHS", "Maternal deaths", mean=0.1, zero_sig=True),
        ]),
        ("Newborn and child", [
            _i("UHC_LIVE_BIRTHS", "Live births", "sex", 80),
            _i("UHC_LBW", "Low birth weight (<2.5 kg)", "sex", parent="UHC_LIVE_BIRTHS", frac=0.2),
            _i("UHC_STILL_BIRTHS", "Stillbirths", "sex", 1, zero_sig=True),
            _i("UHC_SCANU_ADM", "SCANU admissions", "sex", 16),
            _i("UHC_KMC", "Kangaroo mother care initiated", "sex", 5),
            _i("UHC_NB_DEATHS", "Neonatal deaths", "sex", 1, zero_sig=True),
            _i("UHC_U5_PNEUMONIA_ADM", "Pneumonia admissions (U5)", "u5_sex", 22, season="winter"),
            _i("UHC_U5_DIARR_ADM", "Diarrhoea admissions (U5)", "u5_sex", 30, season="summer"),
            _i("UHC_U5_SAM_ADM", "SAM admissions (U5)", "u5_sex", 4),
        ]),
        ("Laboratory", [
            _i("UHC_LAB_HB", "Haemoglobin tests", mean=420),
            _i("UHC_LAB_RBS", "Blood sugar tests", mean=520),
            _i("UHC_LAB_URINE", "Urine tests", mean=310),
            _i("UHC_LAB_BLOODGRP", "Blood grouping tests", mean=160),
            _i("UHC_LAB_SPUTUM", "Sputum tests (AFB/GeneXpert)", mean=60),
            _i("UHC_XRAY", "X-ray examinations", mean=150),
            _i("UHC_USG", "Ultrasound examinations", mean=210),
            _i("UHC_ECG", "ECG performed", mean=120),
        ]),
        ("Resources", [
            _i("UHC_DOCTORS", "Doctors in post", range=(5, 12), zero_sig=True,
               aggregation="AVERAGE"),
            _i("UHC_NURSES", "Nurses in post", range=(12, 26), zero_sig=True,
               aggregation="AVERAGE"),
            _i("UHC_AMBULANCE_TRIPS", "Ambulance trips", mean=40),
            _i("UHC_ASV_STOCK", "Anti-snake venom vials in stock", value_type="INTEGER",
               range=(0, 40)),
            _i("UHC_GENERATOR", "Generator functional", value_type="BOOLEAN"),
            _i("UHC_OXYGEN", "Oxygen available", value_type="TRUE_ONLY"),
            _i("UHC_STOCK_STATUS", "Essential drug stock status", value_type="TEXT",
               option_set="stock"),
            _i("UHC_LAST_SUPPLY", "Last CMSD supply received", value_type="DATE"),
            _i("UHC_REMARKS", "Remarks", value_type="TEXT"),
        ]),
    ],
)

FORMS = [FORM1, FORM2, FORM3, FORM4, UHC_FORM]
ELEMENTS: dict[str, DE] = {de.code: de for f in FORMS for de in f.elements()}

# ------------------------------------------------------------- validation rules

CONSTANTS = [
    # (code, name, value)
    ("CC_WORKING_DAYS", "Community clinic working days per month", 26),
    ("CC_CATCHMENT_POP", "Community clinic catchment population", 6000),
]

# (code, name, importance, left, operator, right) where a side is
# (expression template, description, missingValueStrategy); "#{CODE}" / "#{CODE.Option}"
# / "C{CODE}" are resolved to UIDs by generate.py.
RULES: list[tuple[str, str, str, tuple[str, str, str], str, tuple[str, str, str]]] = [
    ("VR_CC_ANC4_ANC1", "CC - ANC 4th visits <= ANC 1st visits", "MEDIUM",
     ("#{CC_ANC4}", "ANC 4th visits", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{CC_ANC1}", "ANC 1st visits", "NEVER_SKIP")),
    ("VR_CC_SBA_DELIV", "CC - Deliveries by skilled attendant <= Deliveries", "HIGH",
     ("#{CC_DELIV_SBA}", "Deliveries by skilled birth attendant", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{CC_DELIV}", "Deliveries in catchment", "NEVER_SKIP")),
    ("VR_CC_DELIV_SUM", "CC - Deliveries = facility + home deliveries", "MEDIUM",
     ("#{CC_DELIV}", "Deliveries in catchment", "SKIP_IF_ALL_VALUES_MISSING"),
     "equal_to",
     ("#{CC_DELIV_FAC} + #{CC_DELIV_HOME}", "Facility plus home deliveries", "NEVER_SKIP")),
    ("VR_CC_PENTA3_PENTA1", "CC - Penta 3rd dose <= Penta 1st dose", "MEDIUM",
     ("#{CC_PENTA3}", "Penta 3rd dose", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{CC_PENTA1}", "Penta 1st dose", "NEVER_SKIP")),
    ("VR_CC_FIC_MR1", "CC - Fully immunized children <= MR 1st dose", "MEDIUM",
     ("#{CC_FIC}", "Fully immunized children", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{CC_MR1}", "MR 1st dose", "NEVER_SKIP")),
    ("VR_CC_MAL_TEST_POS", "CC - Malaria RDT tested >= RDT positive", "HIGH",
     ("#{CC_MAL_TEST}", "Malaria RDT tested", "NEVER_SKIP"),
     "greater_than_or_equal_to",
     ("#{CC_MAL_POS}", "Malaria RDT positive", "SKIP_IF_ALL_VALUES_MISSING")),
    ("VR_CC_HTN_F", "CC - Hypertension detected <= screened (female)", "LOW",
     ("#{CC_HTN_DET.Female}", "Hypertension detected, female", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{CC_HTN_SCR.Female}", "Hypertension screened, female", "NEVER_SKIP")),
    ("VR_CC_LBW_LB", "CC - Low birth weight <= live births", "MEDIUM",
     ("#{CC_LBW}", "Low birth weight", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{CC_LIVE_BIRTHS}", "Live births", "NEVER_SKIP")),
    ("VR_CC_OPEN_DAYS", "CC - Days clinic open <= working days", "LOW",
     ("#{CC_OPEN_DAYS}", "Days clinic open", "SKIP_IF_ANY_VALUE_MISSING"),
     "less_than_or_equal_to",
     ("C{CC_WORKING_DAYS}", "Working days per month", "NEVER_SKIP")),
    ("VR_UHC_DEATHS_ADM", "UHC - Inpatient deaths <= admissions", "HIGH",
     ("#{UHC_IP_DEATHS}", "Inpatient deaths", "SKIP_IF_ALL_VALUES_MISSING"),
     "less_than_or_equal_to",
     ("#{UHC_ADMISSIONS}", "Admissions", "NEVER_SKIP")),
]

# ------------------------------------------------------------------ min/max

# Elements with stored min/max ranges (DHIS2 uses them as data-entry warnings).
MINMAX_ELEMENTS = ["CC_OPD_TOTAL", "CC_ANC1", "CC_ANC4", "CC_PENTA1", "CC_PENTA3", "CC_FP_PILL"]
MINMAX_UPAZILAS = ["Ramu", "Ukhia"]

# --------------------------------------------------------------- users and roles

ROLES: dict[str, tuple[str, list[str]]] = {
    "superuser": ("Superuser", ["ALL"]),
    # Tracker capture needs no F_ authority in 2.41 (sharing on the type, programs and
    # stages grants data write); M_dhis-web-capture opens the Capture app on the web.
    "chcp": ("CHCP", [
        "F_DATAVALUE_ADD", "F_DATAVALUE_DELETE",
        "M_dhis-web-aggregate-data-entry", "M_dhis-web-dataentry", "M_dhis-web-capture",
    ]),
    "data_manager": ("Data manager", [
        "F_DATAVALUE_ADD", "F_DATAVALUE_DELETE", "F_EDIT_EXPIRED",
        "M_dhis-web-aggregate-data-entry", "M_dhis-web-dataentry", "M_dhis-web-capture",
    ]),
    # The hub's own sync account at national (authenticates with a PAT).
    "hub_service": ("Hub service", ["ALL"]),
}

# username -> (first name, surname, org unit path, role key, email)
USERS: dict[str, tuple[str, str, tuple[str, ...], str, str]] = {
    "admin": ("Nasrin", "Akter", RAMU_PATH, "superuser", "uhfpo.ramu@example.org"),
    "chcp": ("Rahim", "Uddin", CHCP_CLINIC, "chcp", "chcp.merongloa@example.org"),
    "dghs": ("Kamrul", "Hasan", ("Bangladesh",), "superuser", "mis.dghs@example.org"),
    "hub-ramu": ("Ramu", "Hub", RAMU_PATH, "hub_service", "hub.ramu@example.org"),
    "statistician": ("Shahana", "Begum", RAMU_PATH[:3], "data_manager",
                     "stat.coxsbazar@example.org"),
}

# username -> org unit path whose subtree the user may search for tracked entities, when
# wider than the capture org unit: a CHCP finds people registered at any clinic of the
# upazila (women deliver at the UHC, children move) but registers them at their own.
TEI_SEARCH: dict[str, tuple[str, ...]] = {
    "chcp": RAMU_PATH,
}
