"""A seeded, realistic data set for the demo: providers, students, HOKS documents and
study rights in the shapes the ingest accepts, and the late corrections of a half-year.

Pure: no I/O, no clock. The same seed and start date give the same documents, byte for
byte, so a demo run can be repeated and a test can pin what it covers. Every student gets
one *case* (`Case`), a situation of rules.md the demo shows: jaksot ending across the
half-year, J4 interruptions recorded both ways, part-time work, a terminated contract,
missing and conflicting contacts, late study rights and corrections (W4, C3), TUVA, and so
on. Each case's expected outcome is in `EXPECTED` (what the rules should make of it),
which the demo's report sets beside what the services did.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Document = dict[str, Any]
UpsertKind = Literal["hoks", "opiskeluoikeus", "hoks_delete"]


class Case(StrEnum):
    """The situations a student's documents show (rules.md ids in the comments)."""

    TAVALLINEN = "tavallinen"  # E15, one jakso, full contacts
    OSA_AIKAINEN = "osa_aikainen"  # K2 part-time
    KAKSI_TUTKINNON_OSAA = "kaksi_tutkinnon_osaa"  # N1: two jaksot, one bundle
    J4_KAHTENA_JAKSONA = "j4_kahtena_jaksona"  # J4: interruption as two jaksot
    J4_KESKEYTYMISENA = "j4_keskeytymisena"  # J4: one jakso with a keskeytymisajanjakso
    KESKEYTYNYT = "keskeytynyt"  # E9: interrupted on loppu
    SOPIMUS_PURETTU = "sopimus_purettu"  # E10/E16: contract ended between two jaksot
    VAIN_PUHELIN = "vain_puhelin"  # C3/C4: SMS only
    EI_YHTEYSTIETOJA = "ei_yhteystietoja"  # C3: neither channel
    RISTIRIITAISET_YHTEYSTIEDOT = "ristiriitaiset_yhteystiedot"  # C3 email-mismatch
    YHTEYSTIETO_KORJATTU = "yhteystieto_korjattu"  # a missing e-mail added later
    OSA_AIKAISUUS_PUUTTUU = "osa_aikaisuus_puuttuu"  # E11
    TYOPAIKKATIETO_PUUTTUU = "tyopaikkatieto_puuttuu"  # E12
    ERONNUT = "eronnut"  # E7
    MUU_RAHOITUS = "muu_rahoitus"  # E8
    TUVA = "tuva"  # E4
    OPISKELUOIKEUS_MYOHASSA = "opiskeluoikeus_myohassa"  # E3, then D3 late
    LOPPU_MYOHEMMAKSI = "loppu_myohemmaksi"  # W4: moved later before it passed
    LOPPU_AIEMMAKSI = "loppu_aiemmaksi"  # W4: moved earlier, still in the future
    LOPPU_MENNEESEEN = "loppu_menneeseen"  # W4: moved earlier into the past
    YRITTAJAN_OPPISOPIMUS = "yrittajan_oppisopimus"  # T2: not in TPK
    HOKS_POISTETTU = "hoks_poistettu"  # E14
    EI_TUNNISTETTA = "ei_tunnistetta"  # J2: known by its path


WEIGHTS: dict[Case, int] = {
    Case.TAVALLINEN: 30,
    Case.OSA_AIKAINEN: 8,
    Case.KAKSI_TUTKINNON_OSAA: 7,
    Case.J4_KAHTENA_JAKSONA: 5,
    Case.J4_KESKEYTYMISENA: 5,
    Case.KESKEYTYNYT: 3,
    Case.SOPIMUS_PURETTU: 3,
    Case.VAIN_PUHELIN: 6,
    Case.EI_YHTEYSTIETOJA: 3,
    Case.RISTIRIITAISET_YHTEYSTIEDOT: 3,
    Case.YHTEYSTIETO_KORJATTU: 3,
    Case.OSA_AIKAISUUS_PUUTTUU: 2,
    Case.TYOPAIKKATIETO_PUUTTUU: 2,
    Case.ERONNUT: 3,
    Case.MUU_RAHOITUS: 2,
    Case.TUVA: 2,
    Case.OPISKELUOIKEUS_MYOHASSA: 3,
    Case.LOPPU_MYOHEMMAKSI: 2,
    Case.LOPPU_AIEMMAKSI: 2,
    Case.LOPPU_MENNEESEEN: 2,
    Case.YRITTAJAN_OPPISOPIMUS: 2,
    Case.HOKS_POISTETTU: 1,
    Case.EI_TUNNISTETTA: 2,
}

EXPECTED: dict[Case, str] = {
    Case.TAVALLINEN: "surveyed by e-mail and SMS",
    Case.OSA_AIKAINEN: "surveyed; kesto scaled by osa-aikaisuus (K2)",
    Case.KAKSI_TUTKINNON_OSAA: "two jaksot, one bundle, one message (N1)",
    Case.J4_KAHTENA_JAKSONA: "one survey on the later jakso's date (J4)",
    Case.J4_KESKEYTYMISENA: "one survey, the interruption off the kesto (J4, K1)",
    Case.KESKEYTYNYT: "not surveyed: keskeytynyt (E9)",
    Case.SOPIMUS_PURETTU: "the ended jakso surveyed, the later one sopimus_purettu (E16)",
    Case.VAIN_PUHELIN: "surveyed by SMS only (C3, C4)",
    Case.EI_YHTEYSTIETOJA: "not sent: yhteystieto_puuttuu (C3)",
    Case.RISTIRIITAISET_YHTEYSTIEDOT: "no e-mail (email-mismatch), SMS only (C3)",
    Case.YHTEYSTIETO_KORJATTU: "e-mail added before the niputuspvm, then surveyed",
    Case.OSA_AIKAISUUS_PUUTTUU: "not surveyed: osa_aikaisuus_puuttuu (E11)",
    Case.TYOPAIKKATIETO_PUUTTUU: "not surveyed: tyopaikkatieto_puuttuu (E12)",
    Case.ERONNUT: "not surveyed: opiskeluoikeus_paattynyt (E7)",
    Case.MUU_RAHOITUS: "not surveyed: muu_rahoitus (E8)",
    Case.TUVA: "not surveyed: ei_tutkintokoulutus (E4)",
    Case.OPISKELUOIKEUS_MYOHASSA: "waits for the study right (E3), then late (D3)",
    Case.LOPPU_MYOHEMMAKSI: "surveyed on the later date (W4)",
    Case.LOPPU_AIEMMAKSI: "surveyed on the earlier date (W4)",
    Case.LOPPU_MENNEESEEN: "surveyed late if W2 leaves time (W4)",
    Case.YRITTAJAN_OPPISOPIMUS: "TEP surveyed; left out of TPK (T2)",
    Case.HOKS_POISTETTU: "not surveyed: hoks_poistettu (E14)",
    Case.EI_TUNNISTETTA: "surveyed, flagged in the contact-data report (J2)",
}


@dataclass(frozen=True)
class Provider:
    """A koulutustoimija with one oppilaitos and its own tutkinnot."""

    oid: str
    nimi: str
    oppilaitos_oid: str
    oppilaitos_nimi: str
    toimipiste_oid: str
    tutkinnot: tuple[str, ...]


@dataclass(frozen=True)
class Ohjaaja:
    nimi: str
    sahkoposti: str | None
    puhelinnumero: str | None


@dataclass(frozen=True)
class Workplace:
    nimi: str
    ytunnus: str
    ohjaajat: tuple[Ohjaaja, ...]


@dataclass(frozen=True)
class Upsert:
    """One document to send on `day`: a HOKS (key: its id), a study right (its oid), or a
    HOKS deletion (no document)."""

    day: dt.date
    kind: UpsertKind
    key: str
    document: Document | None
    case: Case
    note: str


@dataclass(frozen=True)
class Student:
    hoks_id: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    provider: Provider
    case: Case
    loppu: dt.date


@dataclass(frozen=True)
class Dataset:
    seed: int
    start: dt.date
    days: int
    providers: tuple[Provider, ...]
    students: tuple[Student, ...]
    upserts: tuple[Upsert, ...] = field(repr=False)

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)

    def upserts_on(self, day: dt.date) -> list[Upsert]:
        return [u for u in self.upserts if u.day == day]


# Fictional providers; OIDs come from the seed so data sets of different seeds never mix.
PROVIDER_NAMES = (
    ("Järvilaakson koulutuskuntayhtymä", "Järvilaakson ammattiopisto"),
    ("Rannikon ammattiopisto Oy", "Rannikon ammattiopisto"),
    ("Pohjoisen seudun koulutus", "Revontulen ammattiopisto"),
    ("Itäsuomen aikuisopisto ry", "Itäsuomen aikuisopisto"),
)
# tutkinto koodiarvo → its tutkinnon osat (tutkinnonosat_ codes)
TUTKINNOT: dict[str, tuple[str, ...]] = {
    "351407": ("106915", "106916", "106917"),  # liiketoiminnan pt
    "361101": ("103590", "103591", "103592"),  # puhtaus- ja kiinteistöpalvelualan pt
    "371101": ("101053", "101054", "101055"),  # sosiaali- ja terveysalan pt
    "351301": ("104161", "104162", "104163"),  # rakennusalan pt
    "381113": ("106727", "106728", "106729"),  # ravintola- ja catering-alan pt
}
FIRST_NAMES = (
    "Aino", "Eero", "Helmi", "Juha", "Kaisa", "Lauri", "Maija", "Niko", "Oona", "Pekka",
    "Riikka", "Sami", "Tiina", "Ville", "Åsa", "Jörgen", "Sirpa", "Matti", "Hanna", "Ilkka",
)  # fmt: skip
LAST_NAMES = (
    "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen",
    "Koskinen", "Järvinen", "Lehtonen", "Saarinen", "Salminen", "Öhman", "Lindqvist",
)  # fmt: skip
WORKPLACE_STEMS = (
    "Perhosen päiväkoti", "Kotileipomo Vehnä", "Rakennus Kivi", "Hotelli Aurora",
    "Kiinteistöhuolto Kunto", "Kahvila Kaneli", "Hoivakoti Lepola", "Autokorjaamo Mutteri",
    "Tilitoimisto Summa", "Ravintola Sataman Helmi", "Siivous Kiilto", "Kauppa Kulmala",
    "Metsäpalvelu Kuusi", "Puutarha Vihervaara", "Sähkö-Salo", "Päiväkoti Perhonen",
)  # fmt: skip


def _ascii(text: str) -> str:
    table = str.maketrans("äöåÄÖÅ", "aoaAOA")
    return "".join(ch for ch in text.translate(table).lower() if ch.isalnum() or ch == ".")


def ytunnus(number: int) -> str:
    """A y-tunnus with a valid check digit (weights 7,9,10,5,8,4,2; mod 11)."""
    digits = f"{number % 10_000_000:07d}"
    while True:
        total = sum(int(d) * w for d, w in zip(digits, (7, 9, 10, 5, 8, 4, 2), strict=True))
        remainder = total % 11
        if remainder != 1:
            return f"{digits}-{0 if remainder == 0 else 11 - remainder}"
        digits = f"{(int(digits) + 1) % 10_000_000:07d}"


class _Ids:
    """Seeded identifiers that stay apart between seeds."""

    def __init__(self, seed: int) -> None:
        self.prefix = f"{seed % 100_000:05d}"
        self.count = 0

    def oid(self, kind: str) -> str:
        self.count += 1
        return f"1.2.246.562.{kind}.{self.prefix}{self.count:06d}"


def generate(
    seed: int = 2025, start: dt.date = dt.date(2025, 1, 1), students: int = 300, providers: int = 3
) -> Dataset:
    """The data set of `seed`: `students` students of `providers` providers, their jaksot
    ending within the 150 days after `start`, and the corrections that follow."""
    rng = random.Random(seed)
    ids = _Ids(seed)
    made_providers = tuple(_provider(rng, ids, index) for index in range(providers))
    workplaces = {p.oid: _workplaces(rng, seed, index) for index, p in enumerate(made_providers)}
    hoks_base = 1_000_000 + (seed % 9_000) * 10_000
    cases = list(WEIGHTS)
    # Every case at least once, then by weight.
    chosen = cases + rng.choices(cases, weights=[WEIGHTS[c] for c in cases], k=students)
    chosen = chosen[: max(students, len(cases))]
    rng.shuffle(chosen)
    made_students: list[Student] = []
    upserts: list[Upsert] = []
    for index, case in enumerate(chosen):
        provider = made_providers[index % len(made_providers)]
        student = _Student(
            rng=rng,
            ids=ids,
            hoks_id=hoks_base + index,
            provider=provider,
            workplaces=workplaces[provider.oid],
            case=case,
            start=start,
        )
        made_students.append(student.summary())
        upserts.extend(student.upserts())
    upserts.sort(key=lambda u: (u.day, u.kind != "opiskeluoikeus", u.key))
    return Dataset(
        seed=seed,
        start=start,
        # The half-year, and a fortnight for the last bundles' answers and reminders.
        days=196,
        providers=made_providers,
        students=tuple(made_students),
        upserts=tuple(upserts),
    )


def _provider(rng: random.Random, ids: _Ids, index: int) -> Provider:
    nimi, oppilaitos = PROVIDER_NAMES[index % len(PROVIDER_NAMES)]
    return Provider(
        oid=ids.oid("10"),
        nimi=nimi,
        oppilaitos_oid=ids.oid("10"),
        oppilaitos_nimi=oppilaitos,
        toimipiste_oid=ids.oid("10"),
        tutkinnot=tuple(rng.sample(sorted(TUTKINNOT), 2)),
    )


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def _phone(rng: random.Random) -> str:
    """Finnish mobile numbers written as people write them (C2 normalises them)."""
    number = f"{rng.choice(['40', '44', '45', '50'])}{rng.randrange(1_000_000, 9_999_999)}"
    style = rng.randrange(3)
    if style == 0:
        return f"+358{number}"
    if style == 1:
        return f"0{number[:2]} {number[2:5]} {number[5:]}"
    return f"0{number}"


def _workplaces(rng: random.Random, seed: int, index: int) -> tuple[Workplace, ...]:
    made = []
    for number, stem in enumerate(rng.sample(WORKPLACE_STEMS, 10)):
        domain = _ascii(stem.split()[-1]) + ".fi"
        ohjaajat = []
        for _ in range(rng.choice((1, 1, 2))):
            first, last = _person(rng)
            ohjaajat.append(
                Ohjaaja(
                    nimi=f"{first} {last}",
                    sahkoposti=f"{_ascii(first)}.{_ascii(last)}@{domain}",
                    puhelinnumero=_phone(rng),
                )
            )
        made.append(
            Workplace(
                nimi=stem,
                ytunnus=ytunnus(seed * 7919 + index * 100 + number),
                ohjaajat=tuple(ohjaajat),
            )
        )
    return tuple(made)


@dataclass
class _Jakso:
    tunniste: str | None
    osa: str
    alku: dt.date
    loppu: dt.date
    workplace: Workplace
    ohjaaja: Ohjaaja
    oppisopimus: bool = False
    osa_aikaisuus: int | None = 100
    keskeytykset: list[tuple[dt.date, dt.date | None]] = field(default_factory=list)
    perusta: str | None = None

    def hankkimistapa(self) -> Document:
        ohjaaja: Document = {"nimi": self.ohjaaja.nimi}
        if self.ohjaaja.sahkoposti is not None:
            ohjaaja["sahkoposti"] = self.ohjaaja.sahkoposti
        if self.ohjaaja.puhelinnumero is not None:
            ohjaaja["puhelinnumero"] = self.ohjaaja.puhelinnumero
        koulutus: Document = {
            "vastuullinen-tyopaikka-ohjaaja": ohjaaja,
            "tyopaikan-nimi": self.workplace.nimi,
            "keskeiset-tyotehtavat": ["Asiakaspalvelu", "Perustyötehtävät"],
        }
        if self.workplace.ytunnus:
            koulutus["tyopaikan-y-tunnus"] = self.workplace.ytunnus
        tapa = "oppisopimus" if self.oppisopimus else "koulutussopimus"
        document: Document = {
            "osaamisen-hankkimistapa-koodi-uri": f"osaamisenhankkimistapa_{tapa}",
            "osaamisen-hankkimistapa-koodi-versio": 1,
            "alku": self.alku.isoformat(),
            "loppu": self.loppu.isoformat(),
            "ajanjakson-tarkenne": "",
            "tyopaikalla-jarjestettava-koulutus": koulutus,
            "keskeytymisajanjaksot": [
                {"alku": a.isoformat(), **({"loppu": b.isoformat()} if b else {})}
                for a, b in self.keskeytykset
            ],
            "muut-oppimisymparistot": [],
        }
        if self.tunniste is not None:
            document["yksiloiva-tunniste"] = self.tunniste
        if self.osa_aikaisuus is not None:
            document["osa-aikaisuustieto"] = self.osa_aikaisuus
        if self.perusta is not None:
            document["oppisopimuksen-perusta-koodi-uri"] = self.perusta
            document["oppisopimuksen-perusta-koodi-versio"] = 1
        return document


class _Student:
    """Builds one student's documents for their case."""

    def __init__(
        self,
        *,
        rng: random.Random,
        ids: _Ids,
        hoks_id: int,
        provider: Provider,
        workplaces: tuple[Workplace, ...],
        case: Case,
        start: dt.date,
    ) -> None:
        self.rng = rng
        self.hoks_id = hoks_id
        self.provider = provider
        self.case = case
        self.start = start
        self.oppija_oid = ids.oid("24")
        self.opiskeluoikeus_oid = ids.oid("15")
        self.tutkinto = rng.choice(provider.tutkinnot)
        self.workplace = rng.choice(workplaces)
        self.ohjaaja = rng.choice(self.workplace.ohjaajat)
        # Jaksot end from 5 to 150 days after the start (the second jakso of a terminated
        # contract up to 175): all within the spring's tiedonkeruukausi (T1).
        self.loppu = start + dt.timedelta(days=rng.randrange(5, 150))
        self.alku_opinnot = start - dt.timedelta(days=rng.randrange(200, 700))
        self.jaksot = self._jaksot()

    def _tunniste(self) -> str:
        return f"{self.hoks_id}{self.rng.randrange(10**9, 10**10)}"

    def _jakso(self, **overrides: Any) -> _Jakso:
        loppu = overrides.pop("loppu", self.loppu)
        values: dict[str, Any] = {
            "tunniste": self._tunniste(),
            "osa": TUTKINNOT[self.tutkinto][0],
            "alku": loppu - dt.timedelta(days=self.rng.randrange(30, 120)),
            "loppu": loppu,
            "workplace": self.workplace,
            "ohjaaja": self.ohjaaja,
            "oppisopimus": self.rng.random() < 0.25,
        }
        values.update(overrides)
        return _Jakso(**values)

    def _jaksot(self) -> list[_Jakso]:
        case, rng = self.case, self.rng
        osat = TUTKINNOT[self.tutkinto]
        if case is Case.OSA_AIKAINEN:
            return [self._jakso(osa_aikaisuus=rng.choice((40, 50, 60, 80)))]
        if case is Case.OSA_AIKAISUUS_PUUTTUU:
            return [self._jakso(osa_aikaisuus=None)]
        if case in (Case.KAKSI_TUTKINNON_OSAA, Case.RISTIRIITAISET_YHTEYSTIEDOT):
            other = self.ohjaaja
            if case is Case.RISTIRIITAISET_YHTEYSTIEDOT:
                assert other.sahkoposti is not None
                other = Ohjaaja(other.nimi, "toinen." + other.sahkoposti, other.puhelinnumero)
            # Both end in the same half-month: one bundle key (N1).
            loppu2 = self.loppu - dt.timedelta(days=0 if self.loppu.day in (1, 16) else 1)
            return [self._jakso(), self._jakso(osa=osat[1], loppu=loppu2, ohjaaja=other)]
        if case is Case.J4_KAHTENA_JAKSONA:
            later = self._jakso()
            first_loppu = later.alku - dt.timedelta(days=rng.randrange(20, 40))
            if first_loppu < self.start:
                first_loppu = self.start + dt.timedelta(days=1)
                later.alku = first_loppu + dt.timedelta(days=21)
                later.loppu = max(later.loppu, later.alku + dt.timedelta(days=30))
            first = self._jakso(
                loppu=first_loppu, alku=first_loppu - dt.timedelta(days=30), oppisopimus=False
            )
            later.oppisopimus = False
            return [first, later]
        if case is Case.J4_KESKEYTYMISENA:
            jakso = self._jakso()
            middle = jakso.alku + (jakso.loppu - jakso.alku) / 2
            jakso.keskeytykset = [(middle, middle + dt.timedelta(days=9))]
            return [jakso]
        if case is Case.KESKEYTYNYT:
            jakso = self._jakso()
            jakso.keskeytykset = [(jakso.loppu - dt.timedelta(days=10), None)]
            return [jakso]
        if case is Case.SOPIMUS_PURETTU:
            first = self._jakso(oppisopimus=True)
            second = self._jakso(
                oppisopimus=True,
                osa=osat[1],
                alku=first.loppu + dt.timedelta(days=1),
                loppu=min(
                    first.loppu + dt.timedelta(days=rng.randrange(20, 60)),
                    self.start + dt.timedelta(days=175),
                ),
            )
            return [first, second]
        if case is Case.VAIN_PUHELIN:
            return [self._jakso(ohjaaja=Ohjaaja(self.ohjaaja.nimi, None, _phone(rng)))]
        if case is Case.EI_YHTEYSTIETOJA:
            return [self._jakso(ohjaaja=Ohjaaja(self.ohjaaja.nimi, None, None))]
        if case is Case.YHTEYSTIETO_KORJATTU:
            return [self._jakso(ohjaaja=Ohjaaja(self.ohjaaja.nimi, None, None))]
        if case is Case.TYOPAIKKATIETO_PUUTTUU:
            return [self._jakso(workplace=Workplace(self.workplace.nimi, "", ()))]
        if case is Case.YRITTAJAN_OPPISOPIMUS:
            return [self._jakso(oppisopimus=True, perusta="oppisopimuksenperusta_02")]
        if case is Case.EI_TUNNISTETTA:
            return [self._jakso(tunniste=None)]
        if case is Case.LOPPU_MENNEESEEN:
            # Far enough in that the correction, 20 days before it, comes after the start.
            self.loppu = max(self.loppu, self.start + dt.timedelta(days=40))
            return [self._jakso(loppu=self.loppu)]
        return [self._jakso()]

    def summary(self) -> Student:
        return Student(
            hoks_id=self.hoks_id,
            oppija_oid=self.oppija_oid,
            opiskeluoikeus_oid=self.opiskeluoikeus_oid,
            provider=self.provider,
            case=self.case,
            loppu=max(j.loppu for j in self.jaksot),
        )

    # --- documents -------------------------------------------------------------------

    def hoks(self, jaksot: list[_Jakso] | None = None) -> Document:
        jaksot = self.jaksot if jaksot is None else jaksot
        by_osa: dict[str, list[Document]] = {}
        for jakso in jaksot:
            by_osa.setdefault(jakso.osa, []).append(jakso.hankkimistapa())
        osat = [
            {
                "tutkinnon-osa-koodi-uri": f"tutkinnonosat_{osa}",
                "tutkinnon-osa-koodi-versio": 1,
                "koulutuksen-jarjestaja-oid": self.provider.oppilaitos_oid,
                "olennainen-seikka": True,
                "osaamisen-osoittaminen": [],
                "osaamisen-hankkimistavat": tavat,
            }
            for osa, tavat in by_osa.items()
        ]
        document: Document = {
            "id": self.hoks_id,
            "oppija-oid": self.oppija_oid,
            "opiskeluoikeus-oid": self.opiskeluoikeus_oid,
            "ensikertainen-hyvaksyminen": self.alku_opinnot.isoformat(),
            "osaamisen-hankkimisen-tarve": True,
            "urasuunnitelma-koodi-uri": "urasuunnitelma_0001",
            "urasuunnitelma-koodi-versio": 1,
            "aiemmin-hankitut-ammat-tutkinnon-osat": [],
            "aiemmin-hankitut-paikalliset-tutkinnon-osat": [],
            "aiemmin-hankitut-yhteiset-tutkinnon-osat": [],
            "opiskeluvalmiuksia-tukevat-opinnot": [],
            "hankittavat-ammat-tutkinnon-osat": osat,
            "hankittavat-paikalliset-tutkinnon-osat": [],
            "hankittavat-yhteiset-tutkinnon-osat": [],
        }
        if self.case is Case.TUVA:
            document["hankittavat-ammat-tutkinnon-osat"] = []
            document["hankittavat-koulutuksen-osat"] = [
                {
                    "koulutuksen-osa-koodi-uri": "koulutuksenosattuva_104",
                    "koulutuksen-osa-koodi-versio": 1,
                    "alku": jaksot[0].alku.isoformat(),
                    "loppu": jaksot[0].loppu.isoformat(),
                    "laajuus": 10,
                    "osaamisen-hankkimistavat": [j.hankkimistapa() for j in jaksot],
                }
            ]
        return document

    def opiskeluoikeus(self) -> Document:
        provider, case = self.provider, self.case
        tilat = [_tila(self.alku_opinnot, "lasna", "1")]
        loppu = max(j.loppu for j in self.jaksot)
        if case is Case.ERONNUT:
            tilat.append(_tila(loppu - dt.timedelta(days=12), "eronnut", None))
        if case is Case.MUU_RAHOITUS:
            tilat.append(_tila(self.start - dt.timedelta(days=30), "lasna", "6"))
        suoritus: Document = {
            "tyyppi": _koodi("ammatillinentutkinto", "suorituksentyyppi"),
            "koulutusmoduuli": {"tunniste": _koodi(self.tutkinto, "koulutus")},
            "toimipiste": {"oid": provider.toimipiste_oid},
            "suorituskieli": _koodi("FI", "kieli"),
            "osaamisala": [],
            "tutkintonimike": [],
        }
        if case is Case.SOPIMUS_PURETTU:
            first = self.jaksot[0]
            suoritus["järjestämismuodot"] = [
                {
                    "alku": first.alku.isoformat(),
                    "järjestämismuoto": {
                        "tunniste": _koodi("20", "jarjestamismuoto"),
                        "oppisopimus": {
                            "työnantaja": {
                                "nimi": first.workplace.nimi,
                                "yTunnus": first.workplace.ytunnus,
                            },
                            "oppisopimuksenPurkaminen": {
                                "päivä": (first.loppu + dt.timedelta(days=5)).isoformat(),
                                "purettuKoeajalla": False,
                            },
                        },
                    },
                }
            ]
        tyyppi = "ammatillinenkoulutus"
        if case is Case.TUVA:
            tyyppi = "tuva"
            suoritus["tyyppi"] = _koodi("tuvakoulutuksensuoritus", "suorituksentyyppi")
            suoritus["koulutusmoduuli"] = {"tunniste": _koodi("999907", "koulutus")}
        return {
            "oid": self.opiskeluoikeus_oid,
            "oppilaitos": {
                "oid": provider.oppilaitos_oid,
                "nimi": {"fi": provider.oppilaitos_nimi},
            },
            "koulutustoimija": {"oid": provider.oid, "nimi": {"fi": provider.nimi}},
            "tyyppi": _koodi(tyyppi, "opiskeluoikeudentyyppi"),
            "alkamispäivä": self.alku_opinnot.isoformat(),
            "tila": {"opiskeluoikeusjaksot": tilat},
            "suoritukset": [suoritus],
        }

    def upserts(self) -> Iterator[Upsert]:
        """The student's documents and when they arrive (late ones on later days)."""
        case, start = self.case, self.start
        hoks_key, oo_key = str(self.hoks_id), self.opiskeluoikeus_oid

        def upsert(day: dt.date, kind: UpsertKind, doc: Document | None, note: str) -> Upsert:
            return Upsert(
                day, kind, oo_key if kind == "opiskeluoikeus" else hoks_key, doc, case, note
            )

        oo_day = start
        if case is Case.OPISKELUOIKEUS_MYOHASSA:
            oo_day = self.loppu + dt.timedelta(days=self.rng.randrange(3, 20))
        yield upsert(oo_day, "opiskeluoikeus", self.opiskeluoikeus(), "study right")
        yield upsert(start, "hoks", self.hoks(), "HOKS")
        jakso = self.jaksot[0]
        if case is Case.YHTEYSTIETO_KORJATTU:
            fixed = Ohjaaja(jakso.ohjaaja.nimi, self.ohjaaja.sahkoposti, None)
            day = max(start + dt.timedelta(days=1), jakso.loppu - dt.timedelta(days=3))
            yield upsert(day, "hoks", self.hoks([_replace(jakso, ohjaaja=fixed)]), "e-mail added")
        elif case is Case.LOPPU_MYOHEMMAKSI:
            day = max(start + dt.timedelta(days=1), jakso.loppu - dt.timedelta(days=5))
            moved = _replace(jakso, loppu=jakso.loppu + dt.timedelta(days=21))
            yield upsert(day, "hoks", self.hoks([moved]), "loppu moved 21 days later")
        elif case is Case.LOPPU_AIEMMAKSI:
            day = max(start + dt.timedelta(days=1), jakso.loppu - dt.timedelta(days=20))
            moved = _replace(
                jakso, loppu=max(day + dt.timedelta(days=2), jakso.loppu - dt.timedelta(days=10))
            )
            yield upsert(day, "hoks", self.hoks([moved]), "loppu moved earlier, still ahead")
        elif case is Case.LOPPU_MENNEESEEN:
            day = jakso.loppu - dt.timedelta(days=5)
            moved = _replace(jakso, loppu=day - dt.timedelta(days=15))
            yield upsert(day, "hoks", self.hoks([moved]), "loppu moved into the past")
        elif case is Case.HOKS_POISTETTU:
            day = max(start + dt.timedelta(days=1), jakso.loppu - dt.timedelta(days=3))
            yield upsert(day, "hoks_delete", None, "HOKS deleted")


def _replace(jakso: _Jakso, **changes: Any) -> _Jakso:
    values = {name: getattr(jakso, name) for name in jakso.__dataclass_fields__}
    values.update(changes)
    return _Jakso(**values)


def _koodi(koodiarvo: str, koodisto: str) -> Document:
    return {"koodiarvo": koodiarvo, "koodistoUri": koodisto, "koodistoVersio": 1}


def _tila(alku: dt.date, tila: str, rahoitus: str | None) -> Document:
    jakso: Document = {"alku": alku.isoformat(), "tila": _koodi(tila, "koskiopiskeluoikeudentila")}
    if rahoitus is not None:
        jakso["opintojenRahoitus"] = _koodi(rahoitus, "opintojenrahoitus")
    return jakso
