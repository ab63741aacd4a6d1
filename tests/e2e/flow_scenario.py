"""The end-to-end test's scenario (issue 15): the cases of rules.md, each under a
koulutustoimija of its own so that what the fakes received can be told apart, and the
timeline that walks them from 1.3. to 3.7.2026.

Documents are built in the eHOKS and Koski shapes the ingest accepts; some go over HTTP,
some over the `ehoks.changes` queue (`via`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

Document = dict[str, Any]
Via = Literal["http", "queue"]

START = dt.date(2026, 3, 1)
END = dt.date(2026, 7, 3)
TUTKINTO = "351407"
OSA_A, OSA_B = "106915", "106916"


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def provider_oid(case: int) -> str:
    return f"1.2.246.562.10.99{case:03d}000001"


def oppilaitos_oid(case: int) -> str:
    return f"1.2.246.562.10.99{case:03d}000002"


@dataclass(frozen=True)
class Ohjaaja:
    nimi: str
    sahkoposti: str | None = None
    puhelinnumero: str | None = None


@dataclass(frozen=True)
class Jakso:
    tunniste: str
    alku: str
    loppu: str
    ytunnus: str
    tyopaikka: str
    ohjaaja: Ohjaaja
    osa: str = OSA_A
    tapa: str = "koulutussopimus"
    keskeytykset: tuple[tuple[str, str | None], ...] = ()
    perusta: str | None = None

    def document(self) -> Document:
        ohjaaja: Document = {"nimi": self.ohjaaja.nimi}
        if self.ohjaaja.sahkoposti:
            ohjaaja["sahkoposti"] = self.ohjaaja.sahkoposti
        if self.ohjaaja.puhelinnumero:
            ohjaaja["puhelinnumero"] = self.ohjaaja.puhelinnumero
        body: Document = {
            "yksiloiva-tunniste": self.tunniste,
            "osaamisen-hankkimistapa-koodi-uri": f"osaamisenhankkimistapa_{self.tapa}",
            "osaamisen-hankkimistapa-koodi-versio": 1,
            "alku": self.alku,
            "loppu": self.loppu,
            "osa-aikaisuustieto": 100,
            "tyopaikalla-jarjestettava-koulutus": {
                "vastuullinen-tyopaikka-ohjaaja": ohjaaja,
                "tyopaikan-nimi": self.tyopaikka,
                "tyopaikan-y-tunnus": self.ytunnus,
                "keskeiset-tyotehtavat": ["Asiakaspalvelu"],
            },
            "keskeytymisajanjaksot": [
                {"alku": alku, **({"loppu": loppu} if loppu else {})}
                for alku, loppu in self.keskeytykset
            ],
        }
        if self.perusta:
            body["oppisopimuksen-perusta-koodi-uri"] = self.perusta
            body["oppisopimuksen-perusta-koodi-versio"] = 1
        return body


@dataclass
class Student:
    case: int
    number: int
    jaksot: list[Jakso]
    via: Via = "http"
    purkaminen: str | None = None

    @property
    def hoks_id(self) -> int:
        return 990_000 + self.case * 100 + self.number

    @property
    def oppija_oid(self) -> str:
        return f"1.2.246.562.24.99{self.case:03d}{self.number:06d}"

    @property
    def opiskeluoikeus_oid(self) -> str:
        return f"1.2.246.562.15.99{self.case:03d}{self.number:06d}"

    def hoks(self, jaksot: list[Jakso] | None = None) -> Document:
        by_osa: dict[str, list[Document]] = {}
        for jakso in self.jaksot if jaksot is None else jaksot:
            by_osa.setdefault(jakso.osa, []).append(jakso.document())
        return {
            "id": self.hoks_id,
            "oppija-oid": self.oppija_oid,
            "opiskeluoikeus-oid": self.opiskeluoikeus_oid,
            "ensikertainen-hyvaksyminen": "2025-08-01",
            "osaamisen-hankkimisen-tarve": True,
            "hankittavat-ammat-tutkinnon-osat": [
                {
                    "tutkinnon-osa-koodi-uri": f"tutkinnonosat_{osa}",
                    "tutkinnon-osa-koodi-versio": 1,
                    "osaamisen-hankkimistavat": tavat,
                }
                for osa, tavat in by_osa.items()
            ],
            "hankittavat-paikalliset-tutkinnon-osat": [],
            "hankittavat-yhteiset-tutkinnon-osat": [],
        }

    def opiskeluoikeus(self) -> Document:
        suoritus: Document = {
            "tyyppi": {"koodiarvo": "ammatillinentutkinto"},
            "koulutusmoduuli": {"tunniste": {"koodiarvo": TUTKINTO}},
            "suorituskieli": {"koodiarvo": "FI"},
        }
        if self.purkaminen:
            suoritus["järjestämismuodot"] = [
                {
                    "alku": "2025-08-01",
                    "järjestämismuoto": {
                        "tunniste": {"koodiarvo": "20"},
                        "oppisopimus": {"oppisopimuksenPurkaminen": {"päivä": self.purkaminen}},
                    },
                }
            ]
        return {
            "oid": self.opiskeluoikeus_oid,
            "oppilaitos": {"oid": oppilaitos_oid(self.case), "nimi": {"fi": "E2E-opisto"}},
            "koulutustoimija": {"oid": provider_oid(self.case)},
            "tyyppi": {"koodiarvo": "ammatillinenkoulutus"},
            "tila": {
                "opiskeluoikeusjaksot": [
                    {
                        "alku": "2025-08-01",
                        "tila": {"koodiarvo": "lasna"},
                        "opintojenRahoitus": {"koodiarvo": "1"},
                    }
                ]
            },
            "suoritukset": [suoritus],
        }


@dataclass(frozen=True)
class Correction:
    """A new version of a student's HOKS sent on `day`."""

    day: dt.date
    student: Student
    jaksot: list[Jakso]


@dataclass(frozen=True)
class Answer:
    """The respondent of the bundle holding `ytunnus`'s jaksot answers on `day`."""

    day: dt.date
    case: int
    ytunnus: str


@dataclass(frozen=True)
class Resend:
    """The provider asks on `day` to send the bundle of `ytunnus` again to `sahkoposti`."""

    day: dt.date
    case: int
    ytunnus: str
    sahkoposti: str


@dataclass
class Scenario:
    students: list[Student] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    resends: list[Resend] = field(default_factory=list)

    def student(self, case: int, number: int) -> Student:
        return next(s for s in self.students if (s.case, s.number) == (case, number))


# --- the cases -------------------------------------------------------------------------
# Case numbers are also the koulutustoimija of each case (provider_oid).
SAME_HALF_MONTH = 1  # two students of one instructor in one half-month: one bundle
TWO_HALF_MONTHS = 2  # the same instructor in two half-months: two bundles
TWO_WORKPLACES = 3  # two workplaces of one tutkinnon osa: two instructors, two surveys
J4_BOTH_WAYS = 4  # an interruption recorded as two jaksot and as a keskeytymisajanjakso
INTERRUPTED = 5  # interrupted on loppu (E9): none
TERMINATED = 6  # contract terminated after one jakso ended (E16)
W4 = 7  # end date moved: later; earlier ahead; earlier into the past with time, without
PHONE_ONLY = 8  # only a phone number: SMS only
REMINDERS = 9  # one reminder; none when answered
RESEND = 10  # a resend to a corrected address
TPK = 11  # TPK on 1.7: names normalising differently, without an entrepreneur


def ohjaaja(case: int, name: str, *, email: bool = True, phone: str | None = None) -> Ohjaaja:
    address = f"{name.split()[0].lower()}.case{case}@example.fi" if email else None
    return Ohjaaja(name, address, phone)


def build() -> Scenario:
    s = Scenario()

    # 1: two students of one instructor, both ending in 1.–15.3 → niputuspvm 16.3.
    anna = ohjaaja(SAME_HALF_MONTH, "Anna Aalto")
    for number, loppu in ((1, "2026-03-05"), (2, "2026-03-10")):
        s.students.append(
            Student(
                SAME_HALF_MONTH,
                number,
                [
                    Jakso(
                        f"e2e-1-{number}", "2026-01-12", loppu, "1572860-0", "Kahvila Kaneli", anna
                    )
                ],
            )
        )

    # 2: the same instructor, one jakso ending 5.3. (→ 16.3.), one 20.3. (→ 1.4.); queue.
    bertta = ohjaaja(TWO_HALF_MONTHS, "Bertta Berg")
    for number, loppu in ((1, "2026-03-05"), (2, "2026-03-20")):
        s.students.append(
            Student(
                TWO_HALF_MONTHS,
                number,
                [
                    Jakso(
                        f"e2e-2-{number}", "2026-01-12", loppu, "2345678-0", "Rakennus Kivi", bertta
                    )
                ],
                via="queue",
            )
        )

    # 3: one tutkinnon osa, two workplaces one after the other.
    s.students.append(
        Student(
            TWO_WORKPLACES,
            1,
            [
                Jakso("e2e-3-1", "2026-01-12", "2026-02-20", "1234567-1", "Hotelli Aurora",
                      ohjaaja(TWO_WORKPLACES, "Cecilia Cajander")),
                Jakso("e2e-3-2", "2026-02-23", "2026-03-12", "2345678-0", "Hoivakoti Lepola",
                      ohjaaja(TWO_WORKPLACES, "Daniel Dahl")),
            ],
        )
    )  # fmt: skip

    # 4: J4 both ways, each one survey on 16.4. (loppu 10.4.).
    eero = ohjaaja(J4_BOTH_WAYS, "Eero Eskola")
    s.students.append(
        Student(
            J4_BOTH_WAYS,
            1,
            [
                Jakso("e2e-4-1a", "2026-01-05", "2026-02-20", "1572860-0", "Leipomo Vehnä", eero),
                Jakso("e2e-4-1b", "2026-03-02", "2026-04-10", "1572860-0", "Leipomo Vehnä", eero),
            ],
            via="queue",
        )
    )  # fmt: skip
    s.students.append(
        Student(
            J4_BOTH_WAYS,
            2,
            [
                Jakso("e2e-4-2", "2026-01-05", "2026-04-10", "2345678-0", "Tilitoimisto Summa",
                      ohjaaja(J4_BOTH_WAYS, "Fanni Forsman"),
                      keskeytykset=(("2026-02-21", "2026-03-01"),)),
            ],
        )
    )  # fmt: skip

    # 5: interrupted from 20.2. on, loppu 25.2.: known on arrival (E9).
    s.students.append(
        Student(
            INTERRUPTED,
            1,
            [
                Jakso("e2e-5-1", "2026-01-05", "2026-02-25", "1234567-1", "Kauppa Kulmala",
                      ohjaaja(INTERRUPTED, "Gustav Grön"), keskeytykset=(("2026-02-20", None),)),
            ],
        )
    )  # fmt: skip

    # 6: apprenticeship terminated 20.3.: the jakso ending 6.3. surveyed, the one ending
    # 20.4. not (E10, E16).
    helmi = ohjaaja(TERMINATED, "Helmi Heino")
    s.students.append(
        Student(
            TERMINATED,
            1,
            [
                Jakso("e2e-6-1", "2026-01-12", "2026-03-06", "1572860-0", "Sähkö-Salo", helmi,
                      tapa="oppisopimus"),
                Jakso("e2e-6-2", "2026-03-09", "2026-04-20", "1572860-0", "Sähkö-Salo", helmi,
                      osa=OSA_B, tapa="oppisopimus"),
            ],
            purkaminen="2026-03-20",
        )
    )  # fmt: skip

    # 7: W4, four students with instructors of their own.
    def w4(number: int, loppu: str, name: str) -> Student:
        jakso = Jakso(f"e2e-7-{number}", "2025-12-01", loppu, "2345678-0", "Puutarha Vihervaara",
                      ohjaaja(W4, name))  # fmt: skip
        return Student(W4, number, [jakso])

    later, earlier, past, too_late = (
        w4(1, "2026-03-20", "Iida Ilves"),
        w4(2, "2026-04-20", "Juho Jokela"),
        w4(3, "2026-04-25", "Kalle Kivi"),
        w4(4, "2026-05-25", "Liisa Laine"),
    )
    s.students += [later, earlier, past, too_late]

    def moved(student: Student, loppu: str) -> list[Jakso]:
        (jakso,) = student.jaksot
        return [Jakso(**{**jakso.__dict__, "loppu": loppu})]

    s.corrections += [
        Correction(d("2026-03-10"), later, moved(later, "2026-04-06")),  # → 16.4.
        Correction(d("2026-03-25"), earlier, moved(earlier, "2026-04-08")),  # → 16.4.
        Correction(d("2026-04-20"), past, moved(past, "2026-04-03")),  # 16.4. passed → 1.5.
        Correction(d("2026-05-20"), too_late, moved(too_late, "2026-01-10")),  # W2 closed
    ]

    # 8: only a phone number.
    s.students.append(
        Student(
            PHONE_ONLY,
            1,
            [
                Jakso("e2e-8-1", "2026-01-12", "2026-03-04", "1234567-1", "Autokorjaamo Mutteri",
                      ohjaaja(PHONE_ONLY, "Mikko Mäki", email=False, phone="040 765 4321")),
            ],
        )
    )  # fmt: skip

    # 9: two instructors sent on 16.3.; one answers on 18.3., the other never.
    s.students.append(
        Student(
            REMINDERS,
            1,
            [Jakso("e2e-9-1", "2026-01-12", "2026-03-05", "1572860-0", "Siivous Kiilto",
                   ohjaaja(REMINDERS, "Noora Nurmi"))],
        )
    )  # fmt: skip
    s.students.append(
        Student(
            REMINDERS,
            2,
            [Jakso("e2e-9-2", "2026-01-12", "2026-03-05", "2345678-0", "Metsäpalvelu Kuusi",
                   ohjaaja(REMINDERS, "Olli Oja"))],
        )
    )  # fmt: skip
    s.answers.append(Answer(d("2026-03-18"), REMINDERS, "1572860-0"))

    # 10: sent on 16.3., resent on 18.3. to a corrected address.
    s.students.append(
        Student(
            RESEND,
            1,
            [Jakso("e2e-10-1", "2026-01-12", "2026-03-05", "1572860-0", "Ravintola Sataman Helmi",
                   ohjaaja(RESEND, "Pirjo Peltonen"))],
        )
    )  # fmt: skip
    s.resends.append(Resend(d("2026-03-18"), RESEND, "1572860-0", "pirjo.uusi@example.fi"))

    # 11: TPK 1.7.: one workplace y-tunnus, two spellings; an entrepreneur's own
    # apprenticeship elsewhere.
    for number, name, ytunnus, perusta in (
        (1, "Perhosen päiväkoti", "1572860-0", None),
        (2, "Perhosen Päiväkoti", "1572860-0", None),
        (3, "Päiväkoti Perhonen", "1572860-0", None),
        (4, "Yrittäjä Oy", "2345678-0", "oppisopimuksenperusta_02"),
    ):
        s.students.append(
            Student(
                TPK,
                number,
                [Jakso(f"e2e-11-{number}", "2026-01-12", "2026-03-05", ytunnus, name,
                       ohjaaja(TPK, f"Raili{number} Rinne"),
                       tapa="oppisopimus" if perusta else "koulutussopimus", perusta=perusta)],
            )
        )  # fmt: skip
    return s
