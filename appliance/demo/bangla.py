"""Bangla names for the demo's forms (issue 14), as DHIS2 metadata translations.

``translate(doc)`` adds DHIS2's ``translations`` ([{property, locale, value}]) to the data
sets, sections, data elements (Form-1 and the shared names below), categories, category
options and their combinations, option sets' options and validation rules (their names,
instructions and the two sides' descriptions), so the hub's pages show the forms in Bangla
where the metadata has them, as national's DHIS2 would serve its translated names.
Data elements without an entry here keep their English names (the pages fall back to them).
"""

from __future__ import annotations

from typing import Any

LOCALE = "bn"

# English -> Bangla, for names, short names, form names and rule side descriptions
BN: dict[str, str] = {
    # data sets
    "CC Form-1 Services": "সিসি ফর্ম-১ সেবা",
    "CC F1 Services": "সিসি ফ-১ সেবা",
    "CC Form-2 Maternal & Newborn (ANC/PNC)": "সিসি ফর্ম-২ মা ও নবজাতক (গর্ভকালীন/প্রসবোত্তর)",
    "CC F2 Maternal & Newborn": "সিসি ফ-২ মা ও নবজাতক",
    "CC Form-3 EPI & Child Health": "সিসি ফর্ম-৩ ইপিআই ও শিশু স্বাস্থ্য",
    "CC F3 EPI & Child Health": "সিসি ফ-৩ ইপিআই ও শিশু স্বাস্থ্য",
    "CC Form-4 Family Planning": "সিসি ফর্ম-৪ পরিবার পরিকল্পনা",
    "CC F4 Family Planning": "সিসি ফ-৪ পরিবার পরিকল্পনা",
    "UHC Monthly Report": "উপজেলা স্বাস্থ্য কমপ্লেক্সের মাসিক প্রতিবেদন",
    "UHC Monthly": "উস্বাক মাসিক",
    # sections
    "General outpatient": "সাধারণ বহির্বিভাগ",
    "Common illnesses": "সাধারণ রোগ",
    "NCD screening": "অসংক্রামক রোগ স্ক্রিনিং",
    "Community engagement": "কমিউনিটির অংশগ্রহণ",
    "Clinic management": "ক্লিনিক ব্যবস্থাপনা",
    "Antenatal care": "গর্ভকালীন সেবা",
    "Delivery": "প্রসব",
    "Postnatal care": "প্রসবোত্তর সেবা",
    "Newborn": "নবজাতক",
    "Mortality and coverage": "মৃত্যু ও কভারেজ",
    "Child immunization": "শিশুর টিকা",
    "Td immunization": "টিডি টিকা",
    "EPI sessions": "ইপিআই সেশন",
    "Child health (IMCI)": "শিশু স্বাস্থ্য (আইএমসিআই)",
    "Growth and development": "বৃদ্ধি ও বিকাশ",
    "FP clients": "পরিবার পরিকল্পনা সেবাগ্রহীতা",
    "Side effects and discontinuation": "পার্শ্বপ্রতিক্রিয়া ও ব্যবহার বন্ধ",
    "Reproductive health": "প্রজনন স্বাস্থ্য",
    "Adolescent health": "কৈশোর স্বাস্থ্য",
    "Commodities": "সামগ্রী",
    "Coverage": "কভারেজ",
    "Outpatient and emergency": "বহির্বিভাগ ও জরুরি বিভাগ",
    "Inpatient": "অন্তর্বিভাগ",
    "Morbidity": "রোগের হার",
    "Maternal health": "মাতৃস্বাস্থ্য",
    "Newborn and child": "নবজাতক ও শিশু",
    "Laboratory": "ল্যাবরেটরি",
    "Resources": "সম্পদ",
    # categories, options, combinations
    "Sex": "লিঙ্গ", "Male": "পুরুষ", "Female": "নারী",
    "Age group": "বয়সের গ্রুপ", "<1y": "<১ বছর", "1-4y": "১-৪ বছর", "5-14y": "৫-১৪ বছর",
    "15-49y": "১৫-৪৯ বছর", "50+y": "৫০+ বছর",
    "Woman's age": "নারীর বয়স", "<20y": "<২০ বছর", "20-24y": "২০-২৪ বছর",
    "25-34y": "২৫-৩৪ বছর", "35+y": "৩৫+ বছর",
    "Under-5 age": "৫ বছরের কম বয়স", "0-11m": "০-১১ মাস", "12-59m": "১২-৫৯ মাস",
    "FP client type": "সেবাগ্রহীতার ধরন", "New": "নতুন", "Revisit": "পুরাতন",
    "Adolescent age": "কিশোর-কিশোরীর বয়স", "10-14y": "১০-১৪ বছর", "15-19y": "১৫-১৯ বছর",
    "Td target group": "টিডি লক্ষ্য দল", "Pregnant woman": "গর্ভবতী নারী",
    "Non-pregnant woman 15-49y": "গর্ভবতী নন এমন নারী ১৫-৪৯ বছর",
    "Sex and Age group": "লিঙ্গ ও বয়সের গ্রুপ",
    "Under-5 age and Sex": "৫ বছরের কম বয়স ও লিঙ্গ",
    "FP client type and Woman's age": "সেবাগ্রহীতার ধরন ও নারীর বয়স",
    "Adolescent age and Sex": "কিশোর-কিশোরীর বয়স ও লিঙ্গ",
    # option sets
    "Stock status": "মজুদের অবস্থা", "Adequate": "পর্যাপ্ত", "Low": "কম",
    "Stock-out": "মজুদ শেষ",
    # Form-1 data elements (form names)
    "Patients attended": "সেবা নেওয়া রোগী",
    "New patients": "নতুন রোগী",
    "Patients referred to UHC": "উপজেলা স্বাস্থ্য কমপ্লেক্সে রেফার করা রোগী",
    "Nutrition counselling": "পুষ্টি পরামর্শ",
    "Acute respiratory infection": "তীব্র শ্বাসতন্ত্রের সংক্রমণ",
    "Diarrhoea": "ডায়রিয়া",
    "Fever": "জ্বর",
    "Skin disease": "চর্মরোগ",
    "Gastritis / peptic ulcer": "গ্যাস্ট্রাইটিস / পেপটিক আলসার",
    "Anaemia": "রক্তস্বল্পতা",
    "Eye disease": "চোখের রোগ",
    "Injury": "আঘাত",
    "Malaria RDT tested": "ম্যালেরিয়া আরডিটি পরীক্ষা",
    "Malaria RDT positive": "ম্যালেরিয়া আরডিটি পজিটিভ",
    "Hypertension screened (30+ years)": "উচ্চ রক্তচাপ স্ক্রিনিং (৩০+ বছর)",
    "Hypertension detected": "উচ্চ রক্তচাপ শনাক্ত",
    "Diabetes screened (30+ years)": "ডায়াবেটিস স্ক্রিনিং (৩০+ বছর)",
    "Diabetes detected": "ডায়াবেটিস শনাক্ত",
    "Presumptive TB referred": "সন্দেহভাজন যক্ষ্মা রোগী রেফার",
    "Health education sessions held": "স্বাস্থ্য শিক্ষা সেশন",
    "Health education participants": "স্বাস্থ্য শিক্ষায় অংশগ্রহণকারী",
    "Community Group meeting held": "কমিউনিটি গ্রুপের সভা হয়েছে",
    "Community Support Group meetings": "কমিউনিটি সাপোর্ট গ্রুপের সভা",
    "Births reported in catchment": "এলাকায় জন্মের সংখ্যা",
    "Deaths reported in catchment": "এলাকায় মৃত্যুর সংখ্যা",
    "Days clinic open": "ক্লিনিক খোলা ছিল (দিন)",
    "Days CHCP present": "সিএইচসিপি উপস্থিত ছিলেন (দিন)",
    "Essential drug stock status": "অত্যাবশ্যকীয় ওষুধের মজুদের অবস্থা",
    "Paracetamol stock-out days": "প্যারাসিটামল মজুদশূন্য ছিল (দিন)",
    "Paracetamol stock adjustment (tablets)": "প্যারাসিটামল মজুদ সমন্বয় (ট্যাবলেট)",
    "Solar power functional": "সোলার বিদ্যুৎ চালু আছে",
    "Last drug supply received": "সর্বশেষ ওষুধ সরবরাহের তারিখ",
    "Client satisfaction score (%)": "সেবাগ্রহীতার সন্তুষ্টি (%)",
    "Remarks": "মন্তব্য",
    # names used by the validation rules' sides (and their elements where they match)
    "ANC 4th visits": "গর্ভকালীন ৪র্থ সেবা",
    "ANC 1st visits": "গর্ভকালীন ১ম সেবা",
    "ANC 1st visit": "গর্ভকালীন ১ম সেবা",
    "ANC 2nd visit": "গর্ভকালীন ২য় সেবা",
    "ANC 3rd visit": "গর্ভকালীন ৩য় সেবা",
    "ANC 4th visit": "গর্ভকালীন ৪র্থ সেবা",
    "Pregnant women registered": "নিবন্ধিত গর্ভবতী নারী",
    "Deliveries by skilled birth attendant": "দক্ষ সেবাদানকারীর মাধ্যমে প্রসব",
    "Deliveries in catchment": "এলাকায় প্রসব",
    "Facility deliveries": "প্রতিষ্ঠানে প্রসব",
    "Home deliveries": "বাড়িতে প্রসব",
    "Facility plus home deliveries": "প্রতিষ্ঠানে ও বাড়িতে প্রসব মিলিয়ে",
    "Penta 3rd dose": "পেন্টা ৩য় ডোজ",
    "Penta 1st dose": "পেন্টা ১ম ডোজ",
    "Fully immunized children": "পূর্ণ টিকাপ্রাপ্ত শিশু",
    "MR 1st dose": "এমআর ১ম ডোজ",
    "Hypertension detected, female": "উচ্চ রক্তচাপ শনাক্ত, নারী",
    "Hypertension screened, female": "উচ্চ রক্তচাপ স্ক্রিনিং, নারী",
    "Low birth weight": "কম ওজন নিয়ে জন্ম",
    "Live births": "জীবিত জন্ম",
    "Working days per month": "মাসে কর্মদিবস",
    "Inpatient deaths": "অন্তর্বিভাগে মৃত্যু",
    "Admissions": "ভর্তি",
}
# validation rule names -> Bangla (the rules' instructions are built from them)
RULES: dict[str, str] = {
    "CC - ANC 4th visits <= ANC 1st visits": "গর্ভকালীন ৪র্থ সেবা ১ম সেবার বেশি হবে না",
    "CC - Deliveries by skilled attendant <= Deliveries": "দক্ষ সেবাদানকারীর প্রসব মোট প্রসবের বেশি হবে না",
    "CC - Deliveries = facility + home deliveries": "মোট প্রসব = প্রতিষ্ঠানে + বাড়িতে প্রসব",
    "CC - Penta 3rd dose <= Penta 1st dose": "পেন্টা ৩য় ডোজ ১ম ডোজের বেশি হবে না",
    "CC - Fully immunized children <= MR 1st dose": "পূর্ণ টিকাপ্রাপ্ত শিশু এমআর ১ম ডোজের বেশি হবে না",
    "CC - Malaria RDT tested >= RDT positive": "আরডিটি পজিটিভ আরডিটি পরীক্ষার বেশি হবে না",
    "CC - Hypertension detected <= screened (female)": "উচ্চ রক্তচাপ শনাক্ত স্ক্রিনিংয়ের বেশি হবে না (নারী)",
    "CC - Low birth weight <= live births": "কম ওজনের জন্ম জীবিত জন্মের বেশি হবে না",
    "CC - Days clinic open <= working days": "ক্লিনিক খোলার দিন কর্মদিবসের বেশি হবে না",
    "UHC - Inpatient deaths <= admissions": "অন্তর্বিভাগে মৃত্যু ভর্তির বেশি হবে না",
}
PREFIXES = ("CC - ", "UHC - ")


def bangla(name: str | None) -> str | None:
    """The Bangla of a demo name: as listed, a data element's ``CC - `` name by its form
    name, a category option combination's by its options."""
    if not name:
        return None
    if name in BN:
        return BN[name]
    for p in PREFIXES:
        if name.startswith(p) and name[len(p):] in BN:
            return p.split(" ")[0] + " - " + BN[name[len(p):]]
    parts = name.split(", ")
    if len(parts) > 1 and all(x in BN for x in parts):
        return ", ".join(BN[x] for x in parts)
    return None


def _add(obj: dict[str, Any], prop: str, value: str | None) -> None:
    if value:
        obj.setdefault("translations", []).append(
            {"property": prop, "locale": LOCALE, "value": value})


def translate(doc: dict[str, Any]) -> None:
    """Add the Bangla translations to ``doc``'s metadata in place."""
    for type_ in ("dataSets", "sections", "dataElements", "categories", "categoryOptions",
                  "categoryCombos", "categoryOptionCombos", "options", "optionSets"):
        for obj in doc.get(type_, []):
            _add(obj, "NAME", bangla(obj.get("name")))
            if obj.get("shortName") != obj.get("name"):
                _add(obj, "SHORT_NAME", bangla(obj.get("shortName")))
            if obj.get("formName"):
                _add(obj, "FORM_NAME", BN.get(obj["formName"]))
    for rule in doc.get("validationRules", []):
        name = RULES.get(rule.get("name", ""))
        _add(rule, "NAME", name)
        _add(rule, "DESCRIPTION", name)
        _add(rule, "INSTRUCTION", f"রেজিস্টার মিলিয়ে দেখুন: {name}।" if name else None)
        for side in ("leftSide", "rightSide"):
            if isinstance(rule.get(side), dict):
                _add(rule[side], "DESCRIPTION", BN.get(rule[side].get("description", "")))
