"""Bangla names for the demo's metadata (issue 14), as DHIS2 metadata translations.

``translate(doc)`` adds DHIS2's ``translations`` ([{property, locale, value}]) to every name
a community health care provider (CHCP) reads: the data sets, their sections and data
elements, the category model, option sets and options, validation rules (names,
instructions and the two sides' descriptions), the organisation units with their levels
and groups, and the registers' tracker metadata (tracked entity type and attributes,
programs with their date labels, program stages, program rules and the messages their
actions show, relationship types). The hub's pages ask for ``display*`` names in the
reader's language, as national's DHIS2 would serve its translated names.

The tables are English -> Bangla, in the medical Bangla of DGHS's registers and MIS forms
(ANC = গর্ভকালীন সেবা, PNC = প্রসবোত্তর সেবা, EPI = ইপিআই, FP = পরিবার পরিকল্পনা), numbers in
Bengali digits, and place names as Bangladeshis write them. DHIS2's ``default`` category
model keeps its name: clients recognise the default combination by it.
"""

from __future__ import annotations

from typing import Any

from . import registers as reg

LOCALE = "bn"

Table = dict[str, str]


def _merge(*tables: Table) -> Table:
    """One table; an English name listed twice must have one Bangla (a typo otherwise
    silently wins)."""
    out: Table = {}
    for t in tables:
        for en, bn in t.items():
            assert out.get(en, bn) == bn, (en, out[en], bn)
            out[en] = bn
    return out


# --------------------------------------------------------------------- the forms

DATA_SETS: Table = {
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
}

SECTIONS: Table = {
    # Form-1
    "General outpatient": "সাধারণ বহির্বিভাগ",
    "Common illnesses": "সাধারণ রোগ",
    "NCD screening": "অসংক্রামক রোগ স্ক্রিনিং",
    "Community engagement": "কমিউনিটির অংশগ্রহণ",
    "Clinic management": "ক্লিনিক ব্যবস্থাপনা",
    # Form-2
    "Antenatal care": "গর্ভকালীন সেবা",
    "Delivery": "প্রসব",
    "Postnatal care": "প্রসবোত্তর সেবা",
    "Newborn": "নবজাতক",
    "Mortality and coverage": "মৃত্যু ও কভারেজ",
    # Form-3
    "Child immunization": "শিশুর টিকা",
    "Td immunization": "টিডি টিকা",
    "EPI sessions": "ইপিআই সেশন",
    "Child health (IMCI)": "শিশু স্বাস্থ্য (আইএমসিআই)",
    "Growth and development": "বৃদ্ধি ও বিকাশ",
    # Form-4
    "FP clients": "পরিবার পরিকল্পনা সেবাগ্রহীতা",
    "Side effects and discontinuation": "পার্শ্বপ্রতিক্রিয়া ও ব্যবহার বন্ধ",
    "Reproductive health": "প্রজনন স্বাস্থ্য",
    "Adolescent health": "কৈশোর স্বাস্থ্য",
    "Commodities": "সামগ্রী",
    "Coverage": "কভারেজ",
    # UHC Monthly Report
    "Outpatient and emergency": "বহির্বিভাগ ও জরুরি বিভাগ",
    "Inpatient": "অন্তর্বিভাগ",
    "Morbidity": "রোগের হার",
    "Maternal health": "মাতৃস্বাস্থ্য",
    "Newborn and child": "নবজাতক ও শিশু",
    "Laboratory": "ল্যাবরেটরি",
    "Resources": "সম্পদ",
}

CATEGORY_MODEL: Table = {
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
    # the aggregate option set
    "Stock status": "মজুদের অবস্থা", "Adequate": "পর্যাপ্ত", "Low": "কম",
    "Stock-out": "মজুদ শেষ",
}

# Data elements by their form names (a name is the form's prefix + its form name).
FORM1: Table = {
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
}

FORM2: Table = {
    # Antenatal care
    "Pregnant women registered": "নিবন্ধিত গর্ভবতী নারী",
    "ANC 1st visit": "গর্ভকালীন ১ম সেবা",
    "ANC 2nd visit": "গর্ভকালীন ২য় সেবা",
    "ANC 3rd visit": "গর্ভকালীন ৩য় সেবা",
    "ANC 4th visit": "গর্ভকালীন ৪র্থ সেবা",
    "Pregnant women BP measured": "গর্ভবতী নারীর রক্তচাপ পরিমাপ",
    "Pregnant women weighed": "গর্ভবতী নারীর ওজন পরিমাপ",
    "Pregnant women Hb tested": "গর্ভবতী নারীর হিমোগ্লোবিন পরীক্ষা",
    "Anaemia in pregnancy": "গর্ভাবস্থায় রক্তস্বল্পতা",
    "Urine albumin tested": "প্রস্রাবে অ্যালবুমিন পরীক্ষা",
    "Gestational diabetes screened": "গর্ভকালীন ডায়াবেটিস স্ক্রিনিং",
    "IFA tablets given in pregnancy": "গর্ভাবস্থায় আয়রন-ফলিক এসিড ট্যাবলেট প্রদান",
    "Calcium tablets given in pregnancy": "গর্ভাবস্থায় ক্যালসিয়াম ট্যাবলেট প্রদান",
    "Deworming tablet given in pregnancy": "গর্ভাবস্থায় কৃমিনাশক ট্যাবলেট প্রদান",
    "Nutrition counselling in pregnancy": "গর্ভাবস্থায় পুষ্টি পরামর্শ",
    "Birth preparedness counselling": "প্রসব প্রস্তুতি বিষয়ে পরামর্শ",
    "ANC home visits": "গর্ভকালীন সেবায় বাড়ি পরিদর্শন",
    "Ultrasound referrals": "আল্ট্রাসনোগ্রামের জন্য রেফার",
    "Pregnancy danger signs referred": "গর্ভকালীন বিপদচিহ্নের জন্য রেফার",
    # Delivery
    "Facility deliveries": "প্রতিষ্ঠানে প্রসব",
    "Home deliveries": "বাড়িতে প্রসব",
    "Deliveries in catchment": "এলাকায় প্রসব",
    "Deliveries by skilled birth attendant": "দক্ষ সেবাদানকারীর মাধ্যমে প্রসব",
    "Misoprostol distributed": "মিসোপ্রোস্টল বিতরণ",
    "Clean delivery kits distributed": "পরিচ্ছন্ন প্রসব কিট বিতরণ",
    "Pregnant women with EDD next month": "আগামী মাসে সম্ভাব্য প্রসবের গর্ভবতী নারী",
    # Postnatal care
    "PNC 1st visit (mother)": "প্রসবোত্তর ১ম সেবা (মা)",
    "PNC 2nd visit (mother)": "প্রসবোত্তর ২য় সেবা (মা)",
    "PNC 3rd visit (mother)": "প্রসবোত্তর ৩য় সেবা (মা)",
    "PNC 4th visit (mother)": "প্রসবোত্তর ৪র্থ সেবা (মা)",
    "IFA given postpartum": "প্রসবোত্তর আয়রন-ফলিক এসিড প্রদান",
    "Postpartum FP counselling": "প্রসবোত্তর পরিবার পরিকল্পনা পরামর্শ",
    "Postpartum BP measured": "প্রসবোত্তর রক্তচাপ পরিমাপ",
    "Newborn care counselling of mothers": "মায়েদের নবজাতকের যত্ন বিষয়ে পরামর্শ",
    # Newborn
    "Live births": "জীবিত জন্ম",
    "Low birth weight (<2.5 kg)": "কম ওজন নিয়ে জন্ম (<২.৫ কেজি)",
    "Newborns weighed": "নবজাতকের ওজন পরিমাপ",
    "Chlorhexidine applied to cord": "নাভিতে ক্লোরহেক্সিডিন প্রয়োগ",
    "Breastfed within 1 hour": "জন্মের ১ ঘণ্টার মধ্যে বুকের দুধ খাওয়ানো",
    "Newborn PNC 1st visit": "নবজাতকের প্রসবোত্তর ১ম সেবা",
    "Newborn PNC 2nd visit": "নবজাতকের প্রসবোত্তর ২য় সেবা",
    "Newborn PNC 3rd visit": "নবজাতকের প্রসবোত্তর ৩য় সেবা",
    "Newborn PNC 4th visit": "নবজাতকের প্রসবোত্তর ৪র্থ সেবা",
    "Newborn danger signs referred": "নবজাতকের বিপদচিহ্নের জন্য রেফার",
    "Exclusive breastfeeding counselling": "শুধু বুকের দুধ খাওয়ানো বিষয়ে পরামর্শ",
    "Stillbirths": "মৃত জন্ম",
    "Neonatal deaths": "নবজাতকের মৃত্যু",
    # Mortality and coverage
    "Maternal deaths": "মাতৃমৃত্যু",
    "Postpartum haemorrhage referred": "প্রসবোত্তর রক্তক্ষরণের জন্য রেফার",
    "Eclampsia referred": "একলাম্পসিয়ার জন্য রেফার",
    "ANC4 coverage (%)": "গর্ভকালীন ৪র্থ সেবার কভারেজ (%)",
}

FORM3: Table = {
    # Child immunization
    "BCG": "বিসিজি",
    "Penta 1st dose": "পেন্টা ১ম ডোজ",
    "Penta 2nd dose": "পেন্টা ২য় ডোজ",
    "Penta 3rd dose": "পেন্টা ৩য় ডোজ",
    "OPV 1st dose": "ওপিভি ১ম ডোজ",
    "OPV 2nd dose": "ওপিভি ২য় ডোজ",
    "OPV 3rd dose": "ওপিভি ৩য় ডোজ",
    "PCV 1st dose": "পিসিভি ১ম ডোজ",
    "PCV 2nd dose": "পিসিভি ২য় ডোজ",
    "PCV 3rd dose": "পিসিভি ৩য় ডোজ",
    "fIPV 1st dose": "এফআইপিভি ১ম ডোজ",
    "fIPV 2nd dose": "এফআইপিভি ২য় ডোজ",
    "MR 1st dose": "এমআর ১ম ডোজ",
    "MR 2nd dose": "এমআর ২য় ডোজ",
    "Fully immunized children": "পূর্ণ টিকাপ্রাপ্ত শিশু",
    "Zero-dose children identified": "শূন্য-ডোজ শিশু শনাক্ত",
    # Td immunization
    "Td 1st dose": "টিডি ১ম ডোজ",
    "Td 2nd dose": "টিডি ২য় ডোজ",
    "Td 3rd dose": "টিডি ৩য় ডোজ",
    "Td 4th dose": "টিডি ৪র্থ ডোজ",
    "Td 5th dose": "টিডি ৫ম ডোজ",
    # EPI sessions
    "EPI sessions planned": "পরিকল্পিত ইপিআই সেশন",
    "EPI sessions held": "অনুষ্ঠিত ইপিআই সেশন",
    "Outreach EPI sessions held": "অনুষ্ঠিত আউটরিচ ইপিআই সেশন",
    "EPI defaulters traced": "টিকা বাদ পড়া শিশু খুঁজে বের করা",
    "AEFI reported": "টিকা-পরবর্তী বিরূপ প্রতিক্রিয়া রিপোর্ট",
    "Cold box / vaccine carrier functional": "কোল্ড বক্স / ভ্যাকসিন ক্যারিয়ার সচল",
    "Vaccine wastage rate (%)": "টিকার অপচয়ের হার (%)",
    "Penta1-Penta3 dropout rate (%)": "পেন্টা১-পেন্টা৩ ড্রপআউটের হার (%)",
    # Child health (IMCI): "(U5)" is "(৫ বছরের কম)", as the Under-5 age category
    "Children under 5 attended": "সেবা নেওয়া ৫ বছরের কম বয়সী শিশু",
    "Pneumonia (U5)": "নিউমোনিয়া (৫ বছরের কম)",
    "Amoxicillin DT given (U5)": "অ্যামোক্সিসিলিন ডিটি প্রদান (৫ বছরের কম)",
    "Cough or cold, no pneumonia (U5)": "কাশি বা সর্দি, নিউমোনিয়া নয় (৫ বছরের কম)",
    "Diarrhoea with some dehydration (U5)": "কিছু পানিস্বল্পতাসহ ডায়রিয়া (৫ বছরের কম)",
    "Diarrhoea, no dehydration (U5)": "পানিস্বল্পতা ছাড়া ডায়রিয়া (৫ বছরের কম)",
    "ORS and zinc given (U5)": "ওআরএস ও জিংক প্রদান (৫ বছরের কম)",
    "Fever (U5)": "জ্বর (৫ বছরের কম)",
    "Moderate acute malnutrition (U5)": "মাঝারি তীব্র অপুষ্টি (৫ বছরের কম)",
    "Ear problem (U5)": "কানের সমস্যা (৫ বছরের কম)",
    "Eye infection (U5)": "চোখের সংক্রমণ (৫ বছরের কম)",
    "Skin infection (U5)": "চর্মের সংক্রমণ (৫ বছরের কম)",
    "Worm infestation (U5)": "কৃমির সংক্রমণ (৫ বছরের কম)",
    "Anaemia (U5)": "রক্তস্বল্পতা (৫ বছরের কম)",
    "Children referred (U5)": "রেফার করা শিশু (৫ বছরের কম)",
    "Follow-up visits (U5)": "ফলো-আপ ভিজিট (৫ বছরের কম)",
    "Pneumonia follow-up (U5)": "নিউমোনিয়ার ফলো-আপ (৫ বছরের কম)",
    "Diarrhoea follow-up (U5)": "ডায়রিয়ার ফলো-আপ (৫ বছরের কম)",
    "Very severe disease referred (U5)": "খুব মারাত্মক রোগের জন্য রেফার (৫ বছরের কম)",
    "Possible serious bacterial infection": "সম্ভাব্য মারাত্মক ব্যাকটেরিয়াল সংক্রমণ",
    "Severe acute malnutrition referred": "মারাত্মক তীব্র অপুষ্টির জন্য রেফার",
    # Growth and development
    "Children weighed (GMP)": "ওজন নেওয়া শিশু (বৃদ্ধি পর্যবেক্ষণ)",
    "Underweight children": "কম ওজনের শিশু",
    "Growth faltering identified": "বৃদ্ধি ব্যাহত শনাক্ত",
    "Developmental screening": "বিকাশ স্ক্রিনিং",
    "Birth registration referrals": "জন্ম নিবন্ধনের জন্য রেফার",
    "MUAC screened": "মুয়াক স্ক্রিনিং",
    "IYCF counselling": "শিশুর খাবার বিষয়ে পরামর্শ (আইওয়াইসিএফ)",
    "Micronutrient powder given": "মাইক্রোনিউট্রিয়েন্ট পাউডার (পুষ্টিকণা) প্রদান",
    "Early childhood development counselling": "শিশুর প্রারম্ভিক বিকাশ বিষয়ে পরামর্শ",
    "ECD counselling": "প্রারম্ভিক বিকাশ পরামর্শ",
    "Hand washing demonstrations": "হাত ধোয়া প্রদর্শন",
}

FORM4: Table = {
    # FP clients
    "Women counselled on FP": "পরিবার পরিকল্পনা বিষয়ে পরামর্শ পাওয়া নারী",
    "Women screened for method eligibility": "পদ্ধতির উপযুক্ততা যাচাই করা নারী",
    "BP checked before hormonal method": "হরমোনাল পদ্ধতির আগে রক্তচাপ পরীক্ষা",
    "Oral pill users": "খাবার বড়ি গ্রহণকারী",
    "Injectable users": "ইনজেকশন গ্রহণকারী",
    "FP follow-up visits": "পরিবার পরিকল্পনা ফলো-আপ ভিজিট",
    "Condom users": "কনডম ব্যবহারকারী",
    "Emergency contraceptive pill users": "জরুরি জন্মনিরোধক বড়ি গ্রহণকারী",
    "ECP users": "ইসিপি গ্রহণকারী",
    "Postpartum FP acceptors": "প্রসবোত্তর পরিবার পরিকল্পনা গ্রহণকারী",
    "Implant referrals": "ইমপ্ল্যান্টের জন্য রেফার",
    "IUD referrals": "আইইউডির জন্য রেফার",
    "Tubectomy referrals": "টিউবেকটমির জন্য রেফার",
    "NSV referrals": "এনএসভির জন্য রেফার",
    "Post-abortion FP acceptors": "গর্ভপাত-পরবর্তী পরিবার পরিকল্পনা গ্রহণকারী",
    # Side effects and discontinuation
    "Pill side-effects managed": "বড়ির পার্শ্বপ্রতিক্রিয়ার ব্যবস্থাপনা",
    "Injectable side-effects managed": "ইনজেকশনের পার্শ্বপ্রতিক্রিয়ার ব্যবস্থাপনা",
    "Pill discontinued": "বড়ি ব্যবহার বন্ধ",
    "Injectable discontinued": "ইনজেকশন ব্যবহার বন্ধ",
    "Injectable clients due next month": "আগামী মাসে ইনজেকশনের তারিখ আছে এমন সেবাগ্রহীতা",
    # Reproductive health
    "Pregnancy tests performed": "গর্ভ পরীক্ষা করা হয়েছে",
    "Pregnancy tests positive": "গর্ভ পরীক্ষা পজিটিভ",
    "Menstrual regulation counselling": "মাসিক নিয়মিতকরণ বিষয়ে পরামর্শ",
    "Cervical cancer (VIA) referrals": "জরায়ুমুখ ক্যান্সার পরীক্ষার (ভায়া) জন্য রেফার",
    "Clinical breast examination": "ক্লিনিক্যাল স্তন পরীক্ষা",
    "Anaemia screening of FP clients": "পরিবার পরিকল্পনা সেবাগ্রহীতার রক্তস্বল্পতা স্ক্রিনিং",
    "RTI/STI cases": "প্রজননতন্ত্রের সংক্রমণ / যৌনবাহিত রোগ",
    "Newly married couples counselled": "নবদম্পতিকে পরামর্শ",
    "Infertility cases referred": "বন্ধ্যাত্বের জন্য রেফার",
    # Adolescent health
    "Adolescents attended": "সেবা নেওয়া কিশোর-কিশোরী",
    "Adolescents counselled on ASRH": "কৈশোরকালীন প্রজনন স্বাস্থ্য বিষয়ে পরামর্শ",
    "Adolescents nutrition screened": "কিশোর-কিশোরীর পুষ্টি স্ক্রিনিং",
    "Child marriage prevention counselling": "বাল্যবিবাহ প্রতিরোধ বিষয়ে পরামর্শ",
    "Adolescent friendly corner visits": "কৈশোরবান্ধব কর্নারে ভিজিট",
    "Adolescent girls given IFA": "আয়রন-ফলিক এসিড পাওয়া কিশোরী",
    "Adolescent girls counselled on menstrual hygiene":
        "মাসিক স্বাস্থ্যবিধি বিষয়ে পরামর্শ পাওয়া কিশোরী",
    "Menstrual hygiene counselling": "মাসিক স্বাস্থ্যবিধি পরামর্শ",
    # Commodities: the unit in brackets, as the register's columns
    "Oral pill cycles distributed": "খাবার বড়ি বিতরণ (সাইকেল)",
    "Condom pieces distributed": "কনডম বিতরণ (পিস)",
    "Injectable vials used": "ইনজেকশন ব্যবহার (ভায়াল)",
    "ECP doses distributed": "ইসিপি বিতরণ (ডোজ)",
    "Oral pill cycles in stock": "খাবার বড়ি মজুদ (সাইকেল)",
    "Condom pieces in stock": "কনডম মজুদ (পিস)",
    "Injectable vials in stock": "ইনজেকশন মজুদ (ভায়াল)",
    "ECP doses in stock": "ইসিপি মজুদ (ডোজ)",
    "Oral pill stock-out days": "খাবার বড়ি মজুদশূন্য ছিল (দিন)",
    "Condom stock-out days": "কনডম মজুদশূন্য ছিল (দিন)",
    "Injectable stock-out days": "ইনজেকশন মজুদশূন্য ছিল (দিন)",
    "ECP stock-out days": "ইসিপি মজুদশূন্য ছিল (দিন)",
    "FP commodity stock status": "পরিবার পরিকল্পনা সামগ্রীর মজুদের অবস্থা",
    # Coverage
    "Eligible couples in catchment": "এলাকায় সক্ষম দম্পতি",
    "Couple years of protection": "দম্পতি সুরক্ষা বছর",
    "Contraceptive prevalence rate (%)": "জন্মনিরোধক ব্যবহারের হার (%)",
    "FP satellite sessions": "পরিবার পরিকল্পনা স্যাটেলাইট সেশন",
    "FP home visits": "পরিবার পরিকল্পনা বাড়ি পরিদর্শন",
    "FP group sessions": "পরিবার পরিকল্পনা উঠান বৈঠক",
}

UHC: Table = {
    # Outpatient and emergency
    "Outpatients attended": "বহির্বিভাগে সেবা নেওয়া রোগী",
    "Emergency patients": "জরুরি বিভাগের রোগী",
    "Patients referred to district hospital": "জেলা হাসপাতালে রেফার করা রোগী",
    # Inpatient
    "Admissions": "ভর্তি",
    "Discharges": "ছাড়পত্র পাওয়া রোগী",
    "Inpatient deaths": "অন্তর্বিভাগে মৃত্যু",
    "Beds available": "ব্যবহারযোগ্য শয্যা",
    "Inpatient days": "অন্তর্বিভাগে রোগী-দিবস",
    "Bed occupancy rate (%)": "শয্যা ব্যবহারের হার (%)",
    # Morbidity (Diarrhoea: Form-1's)
    "Pneumonia": "নিউমোনিয়া",
    "Dog bite / ARV given": "কুকুরের কামড় / জলাতঙ্কের টিকা প্রদান",
    "Snake bite": "সাপের কামড়",
    "Road traffic injury": "সড়ক দুর্ঘটনায় আঘাত",
    "Drowning": "পানিতে ডোবা",
    "Hypertension": "উচ্চ রক্তচাপ",
    "Diabetes mellitus": "ডায়াবেটিস মেলাইটাস",
    "COPD / asthma": "সিওপিডি / হাঁপানি",
    "Mental health conditions": "মানসিক স্বাস্থ্য সমস্যা",
    "TB cases notified": "নোটিফাই করা যক্ষ্মা রোগী",
    "Malaria tested (RDT/microscopy)": "ম্যালেরিয়া পরীক্ষা (আরডিটি/মাইক্রোস্কোপি)",
    "Malaria positive": "ম্যালেরিয়া পজিটিভ",
    "Dengue": "ডেঙ্গু",
    # Maternal health (ANC and PNC visits: Form-2's)
    "Normal deliveries": "স্বাভাবিক প্রসব",
    "Caesarean deliveries": "সিজারিয়ান প্রসব",
    "Eclampsia managed with MgSO4": "ম্যাগনেসিয়াম সালফেট দিয়ে একলাম্পসিয়ার চিকিৎসা",
    "Postpartum haemorrhage managed": "প্রসবোত্তর রক্তক্ষরণের চিকিৎসা",
    "Menstrual regulation": "মাসিক নিয়মিতকরণ",
    "Post-abortion care": "গর্ভপাত-পরবর্তী সেবা",
    "IUD inserted": "আইইউডি স্থাপন",
    "Implant inserted": "ইমপ্ল্যান্ট স্থাপন",
    "Tubectomy": "টিউবেকটমি",
    # Newborn and child (births and deaths: Form-2's)
    "SCANU admissions": "স্ক্যানুতে ভর্তি",
    "Kangaroo mother care initiated": "ক্যাঙ্গারু মাদার কেয়ার শুরু",
    "Pneumonia admissions (U5)": "নিউমোনিয়ায় ভর্তি (৫ বছরের কম)",
    "Diarrhoea admissions (U5)": "ডায়রিয়ায় ভর্তি (৫ বছরের কম)",
    "SAM admissions (U5)": "মারাত্মক তীব্র অপুষ্টিতে ভর্তি (৫ বছরের কম)",
    # Laboratory
    "Haemoglobin tests": "হিমোগ্লোবিন পরীক্ষা",
    "Blood sugar tests": "রক্তে শর্করা পরীক্ষা",
    "Urine tests": "প্রস্রাব পরীক্ষা",
    "Blood grouping tests": "রক্তের গ্রুপ নির্ণয়",
    "Sputum tests (AFB/GeneXpert)": "কফ পরীক্ষা (এএফবি/জিন এক্সপার্ট)",
    "X-ray examinations": "এক্স-রে পরীক্ষা",
    "Ultrasound examinations": "আল্ট্রাসনোগ্রাম পরীক্ষা",
    "ECG performed": "ইসিজি করা হয়েছে",
    # Resources (drug stock status and remarks: Form-1's)
    "Doctors in post": "কর্মরত চিকিৎসক",
    "Nurses in post": "কর্মরত নার্স",
    "Ambulance trips": "অ্যাম্বুলেন্সের ট্রিপ",
    "Anti-snake venom vials in stock": "সাপের বিষের প্রতিষেধক মজুদ (ভায়াল)",
    "Generator functional": "জেনারেটর সচল",
    "Oxygen available": "অক্সিজেন আছে",
    "Last CMSD supply received": "সিএমএসডি থেকে সর্বশেষ সরবরাহের তারিখ",
}

# The validation rules' sides where they are not a data element's form name.
RULE_SIDES: Table = {
    "ANC 4th visits": "গর্ভকালীন ৪র্থ সেবা",
    "ANC 1st visits": "গর্ভকালীন ১ম সেবা",
    "Facility plus home deliveries": "প্রতিষ্ঠানে ও বাড়িতে প্রসব মিলিয়ে",
    "Hypertension detected, female": "উচ্চ রক্তচাপ শনাক্ত, নারী",
    "Hypertension screened, female": "উচ্চ রক্তচাপ স্ক্রিনিং, নারী",
    "Low birth weight": "কম ওজন নিয়ে জন্ম",
    "Working days per month": "মাসে কর্মদিবস",
}
# the constants the rules compare with
CONSTANTS: Table = {
    "Community clinic working days per month": "কমিউনিটি ক্লিনিকের মাসিক কর্মদিবস",
    "Community clinic catchment population": "কমিউনিটি ক্লিনিকের আওতাধীন জনসংখ্যা",
}
# validation rule names -> Bangla (the rules' instructions are built from them)
RULES: Table = {
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

# ---------------------------------------------------------------- the registers

PERSON: Table = {
    "Person": "ব্যক্তি",
    "A person registered at a community clinic or UHC.":
        "কমিউনিটি ক্লিনিক বা উপজেলা স্বাস্থ্য কমপ্লেক্সে নিবন্ধিত ব্যক্তি।",
    # attributes: names, short names, descriptions
    "Name (Bangla)": "নাম (বাংলায়)",
    "Full name in Bangla script, as the person writes it.":
        "বাংলা হরফে পুরো নাম, ব্যক্তি নিজে যেভাবে লেখেন।",
    "Name (English)": "নাম (ইংরেজিতে)",
    "Full name in Latin script (spellings vary: Fatema/Fatima, Md./Mohammad).":
        "ইংরেজি হরফে পুরো নাম (বানান ভিন্ন হতে পারে: ফাতেমা/ফাতিমা, মো./মোহাম্মদ)।",
    "Husband's or mother's name": "স্বামী বা মায়ের নাম",
    "Husband/mother name": "স্বামী/মায়ের নাম",
    "A woman's husband's name, a child's mother's name.":
        "নারীর ক্ষেত্রে স্বামীর নাম, শিশুর ক্ষেত্রে মায়ের নাম।",
    "Date of birth": "জন্ম তারিখ",
    "Age (years)": "বয়স (বছর)",
    "Stated age when the date of birth is unknown.": "জন্ম তারিখ জানা না থাকলে বলা বয়স।",
    "Mobile number": "মোবাইল নম্বর",
    "11 digits, 01XXXXXXXXX.": "০১ দিয়ে শুরু ১১ অঙ্কের নম্বর।",
    "Birth registration or NID number": "জন্ম নিবন্ধন বা জাতীয় পরিচয়পত্র নম্বর",
    "BRN / NID": "জন্ম নিবন্ধন / জাতীয় পরিচয়পত্র",
    "The birth registration (BRN) or national ID number; a BRN- number is issued from "
    "reserved values when the person has none.":
        "জন্ম নিবন্ধন বা জাতীয় পরিচয়পত্র নম্বর; কারও না থাকলে সংরক্ষিত নম্বর থেকে একটি "
        "জন্ম নিবন্ধন নম্বর দেওয়া হয়।",
    "Village": "গ্রাম",
    # relationship
    "Mother \u2013 child": "মা \u2013 শিশু",
    "Mother of": "মা", "Child of": "সন্তান",
    "Mother of / Child of": "মা / সন্তান",
}

TRACKER_OPTIONS: Table = {
    "Other": "অন্যান্য", "None": "নেই",
    "Maternal danger sign": "মাতৃ বিপদচিহ্ন",
    "Vaginal bleeding": "যোনিপথে রক্তক্ষরণ",
    "Convulsions": "খিঁচুনি",
    "Severe headache or blurred vision": "তীব্র মাথাব্যথা বা চোখে ঝাপসা দেখা",
    "High fever": "তীব্র জ্বর",
    "Severe abdominal pain": "পেটে তীব্র ব্যথা",
    "Difficult breathing": "শ্বাসকষ্ট",
    "Reduced fetal movement": "গর্ভস্থ শিশুর নড়াচড়া কমে যাওয়া",
    "Swelling of face and hands": "মুখ ও হাত ফুলে যাওয়া",
    "Place of delivery": "প্রসবের স্থান",
    "Home": "বাড়ি",
    "Community clinic": "কমিউনিটি ক্লিনিক",
    "Upazila Health Complex": "উপজেলা স্বাস্থ্য কমপ্লেক্স",
    "Union Health and Family Welfare Centre": "ইউনিয়ন স্বাস্থ্য ও পরিবার কল্যাণ কেন্দ্র",
    "Mother and Child Welfare Centre": "মা ও শিশু কল্যাণ কেন্দ্র",
    "District hospital": "জেলা হাসপাতাল",
    "Private clinic or hospital": "বেসরকারি ক্লিনিক বা হাসপাতাল",
    "Delivery outcome": "প্রসবের ফলাফল",
    "Live birth": "জীবিত জন্ম",
    "Stillbirth": "মৃত জন্ম",
    "Miscarriage or abortion": "গর্ভপাত",
    "Maternal death": "মাতৃমৃত্যু",
    "Childhood illness": "শিশুর অসুস্থতা",
    "Referral facility": "রেফারের স্থান",
}

MATERNAL: Table = {
    "Maternal register": "মাতৃস্বাস্থ্য রেজিস্টার",
    "Pregnant women registered at the community clinic: antenatal contacts, delivery and "
    "postnatal care (DGHS MNCAH register).":
        "কমিউনিটি ক্লিনিকে নিবন্ধিত গর্ভবতী নারী: গর্ভকালীন সেবা, প্রসব ও প্রসবোত্তর সেবা "
        "(স্বাস্থ্য অধিদপ্তরের মা, নবজাতক, শিশু ও কিশোর-কিশোরী স্বাস্থ্য রেজিস্টার)।",
    "First day of last menstrual period (LMP)": "শেষ মাসিকের প্রথম দিন (এলএমপি)",
    "Registration date": "নিবন্ধনের তারিখ",
    # stages
    "ANC visit": "গর্ভকালীন সেবা ভিজিট",
    "PNC visit": "প্রসবোত্তর সেবা ভিজিট",
    "Delivery, expected at 40 weeks from LMP.":
        "প্রসব, শেষ মাসিকের প্রথম দিন থেকে ৪০ সপ্তাহে প্রত্যাশিত।",
    "Postnatal contact: within 24 hours, day 2-3, day 7-14 and day 42 after delivery.":
        "প্রসবোত্তর সেবা: প্রসবের ২৪ ঘণ্টার মধ্যে, ২-৩ দিনে, ৭-১৪ দিনে ও ৪২তম দিনে।",
    # data elements (form names and short names)
    "Gestational age (weeks)": "গর্ভকাল (সপ্তাহ)",
    "Blood pressure systolic (mmHg)": "রক্তচাপ সিস্টোলিক (মিমি পারদ)",
    "BP systolic (mmHg)": "সিস্টোলিক রক্তচাপ (মিমি পারদ)",
    "Blood pressure diastolic (mmHg)": "রক্তচাপ ডায়াস্টোলিক (মিমি পারদ)",
    "BP diastolic (mmHg)": "ডায়াস্টোলিক রক্তচাপ (মিমি পারদ)",
    "Weight (kg)": "ওজন (কেজি)",
    "Haemoglobin (g/dL)": "হিমোগ্লোবিন (গ্রাম/ডেসিলিটার)",
    "Danger sign": "বিপদচিহ্ন",
    "IFA tablets given": "আয়রন-ফলিক এসিড ট্যাবলেট প্রদান",
    "Next visit date": "পরবর্তী ভিজিটের তারিখ",
    "Fundal height (cm)": "জরায়ুর উচ্চতা (সেমি)",
    "Fetal heart rate (per minute)": "গর্ভস্থ শিশুর হৃৎস্পন্দন (প্রতি মিনিটে)",
    "Fetal heart rate": "গর্ভস্থ শিশুর হৃৎস্পন্দন",
    "Oedema": "শরীরে পানি আসা (ইডিমা)",
    "Urine albumin positive": "প্রস্রাবে অ্যালবুমিন পজিটিভ",
    "Calcium tablets given": "ক্যালসিয়াম ট্যাবলেট প্রদান",
    "Td dose given": "টিডি ডোজ প্রদান",
    "Counselled on danger signs and birth plan": "বিপদচিহ্ন ও প্রসব পরিকল্পনা বিষয়ে পরামর্শ",
    "Danger signs and birth plan counselled": "বিপদচিহ্ন ও প্রসব পরিকল্পনার পরামর্শ",
    "Delivery date": "প্রসবের তারিখ",
    "Attended by skilled provider": "দক্ষ সেবাদানকারী উপস্থিত ছিলেন",
    "Birth weight (g)": "জন্মের সময় ওজন (গ্রাম)",
    "Days since delivery": "প্রসবের পর দিন",
    "Exclusive breastfeeding": "শুধু বুকের দুধ খাওয়ানো",
    "Family planning counselled": "পরিবার পরিকল্পনা বিষয়ে পরামর্শ",
    "Vitamin A given to the mother": "মাকে ভিটামিন এ প্রদান",
    "Vitamin A (mother)": "ভিটামিন এ (মা)",
    "Chlorhexidine cord care": "ক্লোরহেক্সিডিন দিয়ে নাভির যত্ন",
    "Newborn danger sign": "নবজাতকের বিপদচিহ্ন",
    # rules and their messages
    "High blood pressure": "উচ্চ রক্তচাপ",
    "Blood pressure 140/90 or above: check for pre-eclampsia and refer to the UHC.":
        "রক্তচাপ ১৪০/৯০ বা তার বেশি: প্রি-একলাম্পসিয়া আছে কি না দেখুন এবং উপজেলা স্বাস্থ্য "
        "কমপ্লেক্সে রেফার করুন।",
    "Gestational age above 45 weeks": "গর্ভকাল ৪৫ সপ্তাহের বেশি",
    "Gestational age cannot be more than 45 weeks.": "গর্ভকাল ৪৫ সপ্তাহের বেশি হতে পারে না।",
    "Severe anaemia": "মারাত্মক রক্তস্বল্পতা",
    "Haemoglobin below 7 g/dL: severe anaemia, refer to the UHC.":
        "হিমোগ্লোবিন ৭ গ্রাম/ডেসিলিটারের কম: মারাত্মক রক্তস্বল্পতা, উপজেলা স্বাস্থ্য "
        "কমপ্লেক্সে রেফার করুন।",
    "Danger sign present": "বিপদচিহ্ন আছে",
    "Danger sign: refer to the UHC now and call the ambulance.":
        "বিপদচিহ্ন: এখনই উপজেলা স্বাস্থ্য কমপ্লেক্সে রেফার করুন এবং অ্যাম্বুলেন্স ডাকুন।",
    "Birth weight only for a live birth": "জন্মের সময় ওজন শুধু জীবিত জন্মে",
    "Adolescent pregnancy": "কৈশোরে গর্ভধারণ",
    "Pregnancy under 18 years: high risk, plan delivery at a facility.":
        "১৮ বছরের কম বয়সে গর্ভধারণ: উচ্চ ঝুঁকি, স্বাস্থ্যকেন্দ্রে প্রসবের পরিকল্পনা করুন।",
    "Age in years from the date of birth": "জন্ম তারিখ থেকে বয়স (বছর)",
}

# EPI: the vaccines of registers.EPI_SCHEDULE and the ages of its stages
VACCINES: Table = {
    "BCG": "বিসিজি", "Penta 1": "পেন্টা ১", "Penta 2": "পেন্টা ২", "Penta 3": "পেন্টা ৩",
    "OPV 1": "ওপিভি ১", "OPV 2": "ওপিভি ২", "OPV 3": "ওপিভি ৩",
    "PCV 1": "পিসিভি ১", "PCV 2": "পিসিভি ২", "PCV 3": "পিসিভি ৩",
    "fIPV 1": "এফআইপিভি ১", "fIPV 2": "এফআইপিভি ২", "MR 1": "এমআর ১", "MR 2": "এমআর ২",
}
EPI_AGES: Table = {  # stage name -> (at) that age
    "At birth (BCG)": "জন্মের সময়", "6 weeks": "৬ সপ্তাহ বয়সে", "10 weeks": "১০ সপ্তাহ বয়সে",
    "14 weeks": "১৪ সপ্তাহ বয়সে", "18 weeks": "১৮ সপ্তাহ বয়সে",
    "9 months (MR 1)": "৯ মাস বয়সে", "15 months (MR 2)": "১৫ মাস বয়সে",
}
EPI: Table = {
    "Child health (EPI)": "শিশু স্বাস্থ্য (ইপিআই)",
    "Children registered for routine immunisation (the EPI card): one contact per "
    "scheduled age, counted from the date of birth.":
        "নিয়মিত টিকার জন্য নিবন্ধিত শিশু (ইপিআই কার্ড): জন্ম তারিখ থেকে গুনে নির্ধারিত প্রতিটি "
        "বয়সে একবার।",
    "At birth (BCG)": "জন্মের সময় (বিসিজি)",
    "6 weeks": "৬ সপ্তাহ", "10 weeks": "১০ সপ্তাহ", "14 weeks": "১৪ সপ্তাহ",
    "18 weeks": "১৮ সপ্তাহ", "9 months (MR 1)": "৯ মাস (এমআর ১)",
    "15 months (MR 2)": "১৫ মাস (এমআর ২)",
    "Age at visit (months)": "ভিজিটের সময় বয়স (মাস)",
    "Age in months at the visit": "ভিজিটের সময় বয়স (মাস)",
    "Vaccination before the date of birth": "জন্ম তারিখের আগে টিকা",
    "The visit date is before the child's date of birth.":
        "ভিজিটের তারিখ শিশুর জন্ম তারিখের আগে।",
}


def _digits(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯"))


def _epi_names() -> Table:
    """The names ``registers._epi()`` builds from ``EPI_SCHEDULE``, in the same shapes."""
    out: Table = {}
    for _code, stage, days, vaccines in reg.EPI_SCHEDULE:
        for _key, label in vaccines:
            v = VACCINES[label]
            out |= {f"{label} given": f"{v} দেওয়া হয়েছে", f"{label} date": f"{v} দেওয়ার তারিখ",
                    f"Hide {label} date unless given": f"{v} না দেওয়া হলে তারিখ লুকানো"}
        given = ", ".join(v[1] for v in vaccines)
        out[f"EPI contact at {stage.split(' (')[0]} of age: {given}."] = (
            f"{EPI_AGES[stage]} ইপিআই সেবা: " + ", ".join(VACCINES[v[1]] for v in vaccines) + "।")
        if days:
            out[f"{stage}: dose given early"] = f"{EPI[stage]}: নির্ধারিত বয়সের আগে ডোজ"
            out[f"The child is younger than {days} days: a dose given this early does not "
                "count."] = (f"শিশুর বয়স {_digits(days)} দিনের কম: এত আগে দেওয়া ডোজ "
                             "গণনায় ধরা হয় না।")
    return out


def _anc_description() -> Table:
    """The ANC stage's description: the four contacts of ``registers.ANC_SCHEDULE``, in
    weeks from the LMP (the English one keeps its machine-readable BD_SCHEDULE note)."""
    nth = ["১ম", "২য়", "৩য়", "৪র্থ", "৫ম", "৬ষ্ঠ", "৭ম", "৮ম"]
    parts = []
    for i, (_contact, lo, hi) in enumerate(reg.ANC_SCHEDULE):
        weeks = (f"{_digits(hi // 7)} সপ্তাহের মধ্যে" if not lo else
                 f"{_digits(lo // 7)}-{_digits(hi // 7)} সপ্তাহে" if lo != hi else
                 f"{_digits(hi // 7)} সপ্তাহে")
        parts.append(f"{nth[i]} সেবা {weeks}")
    n = _digits(len(reg.ANC_SCHEDULE))
    anc = next(s for s in reg.MATERNAL.stages if s.code == "BD_MAT_ANC")
    return {anc.description: f"গর্ভকালীন সেবা ({n}টি সুপারিশকৃত), শেষ মাসিকের প্রথম দিন থেকে: "
                             + ", ".join(parts) + "।"}


UNDER5: Table = {
    "Under-5 register": "৫ বছরের কম বয়সী শিশুর রেজিস্টার",
    "Sick and well child visits of children under five (IMCI and growth monitoring).":
        "৫ বছরের কম বয়সী অসুস্থ ও সুস্থ শিশুর ভিজিট (আইএমসিআই ও বৃদ্ধি পর্যবেক্ষণ)।",
    "Child visit": "শিশু ভিজিট",
    "A sick or growth-monitoring visit; monthly weighing under 2 years.":
        "অসুস্থতা বা বৃদ্ধি পর্যবেক্ষণের ভিজিট; ২ বছরের কম বয়সে প্রতি মাসে ওজন।",
    "Height or length (cm)": "উচ্চতা বা দৈর্ঘ্য (সেমি)",
    "MUAC (mm)": "মুয়াক (মিমি)",
    "Illness": "অসুস্থতা",
    "Treatment given": "প্রদত্ত চিকিৎসা",
    "Referred": "রেফার করা হয়েছে",
    "Referred to": "যেখানে রেফার করা হয়েছে",
    "Vitamin A given": "ভিটামিন এ প্রদান",
    "Deworming tablet given": "কৃমিনাশক ট্যাবলেট প্রদান",
    "ORS given": "ওআরএস প্রদান",
    "Zinc given": "জিংক প্রদান",
    "Feeding counselled (IYCF)": "শিশুর খাবার বিষয়ে পরামর্শ (আইওয়াইসিএফ)",
    # rules and their messages
    "Referral facility only when referred": "রেফার করা হলেই শুধু রেফারের স্থান",
    "Severe acute malnutrition (MUAC)": "মারাত্মক তীব্র অপুষ্টি (মুয়াক)",
    "MUAC below 115 mm: severe acute malnutrition, refer to the UHC.":
        "মুয়াক ১১৫ মিমির কম: মারাত্মক তীব্র অপুষ্টি, উপজেলা স্বাস্থ্য কমপ্লেক্সে রেফার করুন।",
    "Weight outside 0.5-40 kg": "ওজন ০.৫-৪০ কেজির বাইরে",
    "A child under five weighs between 0.5 and 40 kg: check the entry.":
        "৫ বছরের কম বয়সী শিশুর ওজন ০.৫ থেকে ৪০ কেজির মধ্যে হয়: লেখাটি আবার দেখুন।",
    "Pneumonia under 2 months": "২ মাসের কম বয়সে নিউমোনিয়া",
    "Pneumonia in an infant under 2 months is a danger sign: refer to the UHC.":
        "২ মাসের কম বয়সী শিশুর নিউমোনিয়া বিপদচিহ্ন: উপজেলা স্বাস্থ্য কমপ্লেক্সে রেফার করুন।",
    "Child is five or older": "শিশুর বয়স ৫ বছর বা বেশি",
    "The child is five years or older: record the visit in the outpatient register.":
        "শিশুর বয়স ৫ বছর বা তার বেশি: ভিজিটটি বহির্বিভাগের রেজিস্টারে লিখুন।",
}

# a program stage's dates, as DHIS2 labels them
STAGE_LABELS: Table = {"Visit date": "ভিজিটের তারিখ", "Due date": "নির্ধারিত তারিখ"}

BN: Table = _merge(DATA_SETS, SECTIONS, CATEGORY_MODEL, FORM1, FORM2, FORM3, FORM4, UHC,
                   RULE_SIDES, CONSTANTS, PERSON, TRACKER_OPTIONS, MATERNAL,
                   _anc_description(), EPI, _epi_names(), UNDER5, STAGE_LABELS)

# A data element's name is its form's (or register's) prefix and its form name.
PREFIXES: Table = {"CC - ": "সিসি - ", "UHC - ": "উস্বাক - ", "MAT - ": "মাতৃ - ",
                   "EPI - ": "ইপিআই - ", "U5 - ": "অনূর্ধ্ব-৫ - "}

# ------------------------------------------------------------------- the places

# Real places as their own offices and Bangla Wikipedia write them; villages and paras
# that are made up, transliterated. A name missing here is composed word by word.
PLACES: Table = {
    "Bangladesh": "বাংলাদেশ",
    # divisions
    "Barishal": "বরিশাল", "Chattogram": "চট্টগ্রাম", "Dhaka": "ঢাকা", "Khulna": "খুলনা",
    "Mymensingh": "ময়মনসিংহ", "Rajshahi": "রাজশাহী", "Rangpur": "রংপুর", "Sylhet": "সিলেট",
    # districts
    "Patuakhali": "পটুয়াখালী", "Cox's Bazar": "কক্সবাজার", "Cumilla": "কুমিল্লা",
    "Bandarban": "বান্দরবান", "Gazipur": "গাজীপুর", "Jashore": "যশোর",
    "Netrokona": "নেত্রকোণা", "Bogura": "বগুড়া", "Kurigram": "কুড়িগ্রাম",
    "Sunamganj": "সুনামগঞ্জ",
    # upazilas
    "Kalapara": "কলাপাড়া", "Ramu": "রামু", "Ukhia": "উখিয়া", "Teknaf": "টেকনাফ",
    "Chakaria": "চকরিয়া", "Sitakunda": "সীতাকুণ্ড", "Daudkandi": "দাউদকান্দি", "Lama": "লামা",
    "Kaliakair": "কালিয়াকৈর", "Jhikargacha": "ঝিকরগাছা", "Kendua": "কেন্দুয়া",
    "Sariakandi": "সারিয়াকান্দি", "Chilmari": "চিলমারী", "Derai": "দিরাই",
    # Ramu's unions
    "Fatekharkul": "ফতেখাঁরকূল", "Rajarkul": "রাজারকূল", "Chakmarkul": "চাকমারকূল",
    "Kachhapia": "কচ্ছপিয়া", "Eidgar": "ঈদগড়", "Garjania": "গর্জনিয়া",
    "Joarianala": "জোয়ারিয়ানালা", "Kauarkhop": "কাউয়ারখোপ", "Khuniapalong": "খুনিয়াপালং",
    "Mithachhari": "মিঠাছড়ি", "Dhoapalong": "ধোয়াপালং",
    # the other upazilas' unions
    "Dhankhali": "ধানখালী", "Lalua": "লালুয়া",
    "Jalia Palong": "জালিয়াপালং", "Raja Palong": "রাজাপালং", "Palong Khali": "পালংখালী",
    "Hnila": "হ্নীলা", "Whykong": "হোয়াইক্যং", "Sabrang": "সাবরাং",
    "Dulahazara": "ডুলাহাজারা", "Harbang": "হারবাং", "Kakara": "কাকারা",
    "Barabkunda": "বারবকুণ্ড", "Kumira": "কুমিরা", "Gouripur": "গৌরীপুর", "Padua": "পদুয়া",
    "Aziznagar": "আজিজনগর", "Fasyakhali": "ফাঁসিয়াখালী", "Sarai": "সরই",
    "Atabaha": "আটাবহ", "Mouchak": "মৌচাক", "Gadkhali": "গদখালী", "Nabaran": "নাভারণ",
    "Asujia": "আশুজিয়া", "Mashka": "মাসকা", "Roailbari": "রোয়াইলবাড়ী",
    "Bohail": "বোহাইল", "Chaluabari": "চালুয়াবাড়ী", "Raniganj": "রাণীগঞ্জ",
    "Thanahat": "থানাহাট", "Bhatipara": "ভাটিপাড়া", "Rafinagar": "রফিনগর",
    # Ramu's clinic villages
    "Merongloa": "মেরংলোয়া", "Hazirpara": "হাজিরপাড়া", "Sikderpara": "সিকদারপাড়া",
    "Ujanipara": "উজানিপাড়া", "Jumchhari": "জুমছড়ি", "Nolbonia": "নলবনিয়া",
    "Toitong": "টইটং", "Baishari": "বাইশারী", "Beltali": "বেলতলী", "Thimchhari": "থিমছড়ি",
    "Pankhali": "পানখালী", "Laxmir Char": "লক্ষ্মীর চর", "Pechar Dwip": "পেঁচার দ্বীপ",
    "Dhepir Chhara": "ঢেপির ছড়া", "Chainda": "চেইন্দা", "Hajirpara": "হাজিরপাড়া",
    "Khuniapara": "খুনিয়াপাড়া",
    # the words and paras that names are made of
    "Uttar": "উত্তর", "Dakshin": "দক্ষিণ", "Bazar": "বাজার", "Sadar": "সদর",
    "Uttarpara": "উত্তরপাড়া", "Dakshinpara": "দক্ষিণপাড়া", "Purbapara": "পূর্বপাড়া",
    "Paschimpara": "পশ্চিমপাড়া", "Majhpara": "মাঝপাড়া", "Mollapara": "মোল্লাপাড়া",
}
# what the generator appends to a place's name, in the name and in the short name
FACILITIES: Table = {" Community Clinic": " কমিউনিটি ক্লিনিক", " CC": " সিসি",
                     " UHC": " উপজেলা স্বাস্থ্য কমপ্লেক্স"}
ORG_UNIT_KINDS: Table = {
    "Country": "দেশ", "Division": "বিভাগ", "District": "জেলা", "Upazila": "উপজেলা",
    "Union": "ইউনিয়ন", "Facility": "স্বাস্থ্যকেন্দ্র",
    "Community Clinic": "কমিউনিটি ক্লিনিক", "Upazila Health Complex": "উপজেলা স্বাস্থ্য কমপ্লেক্স",
}


def place(name: str) -> str | None:
    """A place's Bangla: as listed, else its longest listed head and the rest in turn."""
    if name in PLACES:
        return PLACES[name]
    words = name.split(" ")
    for i in range(len(words) - 1, 0, -1):
        head, tail = " ".join(words[:i]), " ".join(words[i:])
        if head in PLACES and (rest := place(tail)) is not None:
            return f"{PLACES[head]} {rest}"
    return None


def org_unit(name: str | None) -> str | None:
    """An org unit's Bangla: a place, or a place's clinic or UHC."""
    if not name:
        return None
    for en, bn in FACILITIES.items():
        if name.endswith(en) and (p := place(name.removesuffix(en))) is not None:
            return p + bn
    return place(name)


def bangla(name: str | None) -> str | None:
    """The Bangla of a demo name: as listed; a data element's by its prefix and form name;
    "A, B" (a category option combination) and "A: B" (a rule of a program, a section of
    a form) part by part."""
    if not name:
        return None
    if name in BN:
        return BN[name]
    for en, bn in PREFIXES.items():
        if name.startswith(en) and name.removeprefix(en) in BN:
            return bn + BN[name.removeprefix(en)]
    head, sep, tail = name.partition(": ")
    if sep and head in BN and (rest := bangla(tail)) is not None:
        return f"{BN[head]}: {rest}"
    parts = name.split(", ")
    if len(parts) > 1 and all(x in BN for x in parts):
        return ", ".join(BN[x] for x in parts)
    return None


def _add(obj: dict[str, Any], prop: str, value: str | None) -> None:
    if value:
        obj.setdefault("translations", []).append(
            {"property": prop, "locale": LOCALE, "value": value})


# DHIS2 translation property -> the stored property it translates
_PROPERTIES = (("NAME", "name"), ("SHORT_NAME", "shortName"), ("FORM_NAME", "formName"),
               ("DESCRIPTION", "description"),
               ("ENROLLMENT_DATE_LABEL", "enrollmentDateLabel"),
               ("INCIDENT_DATE_LABEL", "incidentDateLabel"),
               ("EXECUTION_DATE_LABEL", "executionDateLabel"),
               ("DUE_DATE_LABEL", "dueDateLabel"),
               ("RELATIONSHIP_FROM_TO_NAME", "fromToName"),
               ("RELATIONSHIP_TO_FROM_NAME", "toFromName"))
_TYPES = ("dataSets", "sections", "dataElements", "categories", "categoryOptions",
          "categoryCombos", "categoryOptionCombos", "options", "optionSets",
          "trackedEntityTypes", "trackedEntityAttributes", "programs", "programStages",
          "programRules", "relationshipTypes", "constants")


def translate(doc: dict[str, Any]) -> None:
    """Add the Bangla translations to ``doc``'s metadata in place."""
    for type_ in _TYPES:
        for obj in doc.get(type_, []):
            for prop, key in _PROPERTIES:
                _add(obj, prop, bangla(obj.get(key)))
    for ou in doc.get("organisationUnits", []):
        _add(ou, "NAME", org_unit(ou.get("name")))
        _add(ou, "SHORT_NAME", org_unit(ou.get("shortName")))
    for type_ in ("organisationUnitLevels", "organisationUnitGroups"):
        for obj in doc.get(type_, []):
            _add(obj, "NAME", ORG_UNIT_KINDS.get(obj.get("name", "")))
            _add(obj, "SHORT_NAME", ORG_UNIT_KINDS.get(obj.get("shortName", "")))
    for act in doc.get("programRuleActions", []):
        # the warning or error a rule shows on the form (DHIS2's displayContent)
        _add(act, "CONTENT", bangla(act.get("content")))
    for rule in doc.get("validationRules", []):
        name = RULES.get(rule.get("name", ""))
        _add(rule, "NAME", name)
        _add(rule, "DESCRIPTION", name)
        _add(rule, "INSTRUCTION", f"রেজিস্টার মিলিয়ে দেখুন: {name}।" if name else None)
        for side in ("leftSide", "rightSide"):
            if isinstance(rule.get(side), dict):
                _add(rule[side], "DESCRIPTION", bangla(rule[side].get("description")))
