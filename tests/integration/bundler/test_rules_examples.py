"""The rules' worked examples end to end (issue 12, "What must hold"): events published to
`bundler.events` as the ingest's relay would, the day set, `POST /api/v1/runs` for
`tep-niputus` / `tpk-niputus` on the dates, then the states, reasons, niputuspvm, bundle
membership, answer windows and kesto exactly as docs/rules.md states them.

Examples already covered end to end elsewhere are not repeated here: the E-table's
reasons (test_state.py), N2/N3, D3's late jakso without time left (W3), J4's separate
jaksot with one instructor, T3's spellings and T4's repeated run (test_niputus.py). W4
and E17, judged in test_state.py as events arrive, are followed here through the runs.

Runs are unique by (job, date) in the session's one database and take every due jakso:
each test keeps to dates of its own (rules.md's own dates where it gives them, else a
year of its own) and a koulutustoimija of its own. The clock is never frozen on a run
date (1st or 16th), where the scheduler could run the day's jobs before the test's
events are in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel

from tests.integration.bundler.conftest import (
    Student,
    apply,
    history,
    jakso,
    jakso_id,
    jaksot,
    states,
)
from tests.integration.bundler.flow_support import linked, tunniste_of
from tests.integration.bundler.test_niputus import (
    bundles_of,
    koulutustoimija,
    run,
    tpk_bundles_of,
)
from tests.support.services import Running

#: C3: neither a valid address nor a Finnish mobile number.
NO_CONTACT = {"nimi": "Nina Nokia", "sahkoposti": "not-an-address", "puhelinnumero": "09 123"}
AINO = {"nimi": "Aino Arvo", "sahkoposti": "aino@perhonen.fi"}
OTTO = {"nimi": "Otto Oma", "sahkoposti": "otto@perhonen.fi"}


def window(bundle: dict[str, Any]) -> tuple[str, str, str]:
    """A TEP bundle's (niputuspvm, sending date W1, last answer day W2)."""
    return (
        str(bundle["niputuspvm"]),
        str(bundle["lahetyspvm"]),
        str(bundle["voimassa_loppupvm"]),
    )


async def kestot(bundler: Running, hoks_id: int) -> dict[str, int | None]:
    return {j["yksiloiva_tunniste"]: j["kesto"] for j in (await jaksot(bundler, hoks_id)).json()}


# --- D1, W1, W2: the dates ------------------------------------------------------------

#: D1's examples: loppu → niputuspvm; sent on the niputuspvm, W2 = niputuspvm + 29.
D1 = {
    "2022-03-15": ("2022-03-16", "2022-04-14"),
    "2022-03-16": ("2022-04-01", "2022-04-30"),
    "2022-12-31": ("2023-01-01", "2023-01-30"),
    "2024-02-29": ("2024-03-01", "2024-03-30"),
}


async def test_d1_examples_are_bundled_on_their_niputuspvm(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """D1 (2022-03-15 → 16.3.; 2022-03-16 → 1.4.; 2022-12-31 → 1.1.2023; 2024-02-29 →
    1.3.), W1 and W2's first example (niputuspvm 2022-03-16 sent that day → 2022-04-14):
    known while still running, each jakso waits (E1) until the run of its niputuspvm
    judges it again and bundles it with that date; nothing is bundled earlier."""
    set_today("2022-03-14")
    kt = koulutustoimija()
    students = {loppu: Student() for loppu in D1}
    for loppu, student in students.items():
        await apply(
            bundler,
            channel,
            student.opiskeluoikeus(koulutustoimija=kt),
            student.hoks(jakso("a", alku="2022-01-10", loppu=loppu)),
        )
        assert await states(bundler, student.hoks_id) == {"a": ("odottaa", "jakso_kesken", None)}

    for count, (loppu, (pvm, last_day)) in enumerate(D1.items(), start=1):
        await run(bundler, "tep-niputus", pvm)
        bundles = await bundles_of(bundler, kt)
        assert len(bundles) == count, f"the run of {pvm} bundles only loppu {loppu}"
        assert window(bundles[-1]) == (pvm, pvm, last_day)
        assert bundles[-1]["jaksot"] == [await jakso_id(bundler, students[loppu].hoks_id, "a")]
        assert await states(bundler, students[loppu].hoks_id) == {
            "a": ("niputettu", "niputettu", pvm)
        }


async def test_w2_a_late_jakso_keeps_its_niputuspvm_and_60_days_from_it(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """W2's second example, with D3: niputuspvm 2022-03-16, known only on 20.4., sent by
    the run of 1.5. → min(2022-05-30, 2022-05-14) = 2022-05-14."""
    set_today("2022-04-20")
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(jakso("a", alku="2022-01-10", loppu="2022-03-10")),
    )
    assert await states(bundler, student.hoks_id) == {
        "a": ("odottaa", "odottaa_niputusta", "2022-03-16")
    }
    await run(bundler, "tep-niputus", "2022-05-01")
    (bundle,) = await bundles_of(bundler, kt)
    assert window(bundle) == ("2022-03-16", "2022-05-01", "2022-05-14")
    assert bundle["jaksot"] == [await jakso_id(bundler, student.hoks_id, "a")]


# --- J3, J4: several jaksot of one tutkinnon osa ----------------------------------------


def _yhteinen(osa_alue: str) -> dict[str, Any]:
    return {
        "tutkinnon_osa": {
            "kind": "yhteinen",
            "koodi_uri": "tutkinnonosat_106727",
            "koodi": "106727",
            "osa_alue_koodi_uri": f"ammatillisenoppiaineet_{osa_alue}",
        }
    }


#: J4's key: id → (the earlier jakso's changes, the later's, a jatkumo?). Both jaksot
#: 1.1.–31.1. and 1.3.–31.5.; judged on 10.2., so the earlier alone is E15 (1.2.).
JATKUMO_KEY: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "instructor-spelled-otherwise": ({}, {"ohjaaja": {"nimi": "  OLLI ohjaaja "}}, True),
    "another-instructor": ({}, {"ohjaaja": {"nimi": "Maija Mentori"}}, False),
    "another-y-tunnus": ({}, {"tyopaikan_ytunnus": "7654321-0"}, False),
    "another-tutkinnon-osa": (
        {},
        {"tutkinnon_osa": {"kind": "ammatillinen", "koodi_uri": "tutkinnonosat_106946"}},
        False,
    ),
    "yhteinen-same-osa-alue": (_yhteinen("vvai"), _yhteinen("vvai"), True),
    "yhteinen-another-osa-alue": (_yhteinen("vvai"), _yhteinen("mlfk"), False),
}


@pytest.mark.parametrize(
    ("earlier", "later", "is_jatkumo"), JATKUMO_KEY.values(), ids=JATKUMO_KEY.keys()
)
async def test_j4_what_makes_a_jatkumo(
    bundler: Running,
    channel: AbstractChannel,
    set_today: Callable[[str], None],
    earlier: dict[str, Any],
    later: dict[str, Any],
    is_jatkumo: bool,
) -> None:
    """J4: one HOKS, the same tutkinnon osa (koodi-uri, and osa-alue for yhteiset), the
    same y-tunnus and the same normalised instructor name (N4) → the earlier jakso
    waits for the later one; any of them different → it is judged on its own."""
    set_today("2063-02-10")
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=koulutustoimija()),
        student.hoks(
            jakso("earlier", alku="2063-01-01", loppu="2063-01-31", **earlier),
            jakso("later", alku="2063-03-01", loppu="2063-05-31", **later),
        ),
    )
    waits = ("odottaa", "jatkuu_myohemmin", "2063-06-01")
    alone = ("odottaa", "odottaa_niputusta", "2063-02-01")
    assert (await states(bundler, student.hoks_id))["earlier"] == (waits if is_jatkumo else alone)


async def test_j4_jaksot_of_two_hoks_of_one_student_are_no_jatkumo(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4 ("jaksot of one HOKS"): the same two jaksot in two HOKS of one study right are
    each judged on their own."""
    set_today("2063-02-10")
    first = Student()
    second = Student(oid=first.oid, oppija_oid=first.oppija_oid)
    await apply(
        bundler,
        channel,
        first.opiskeluoikeus(koulutustoimija=koulutustoimija()),
        first.hoks(jakso("earlier", alku="2063-01-01", loppu="2063-01-31")),
        second.hoks(jakso("later", alku="2063-03-01", loppu="2063-05-31")),
    )
    assert await states(bundler, first.hoks_id) == {
        "earlier": ("odottaa", "odottaa_niputusta", "2063-02-01")
    }


async def test_j4_at_another_workplace_each_instructor_gets_a_survey(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J3, J4 ("jos työpaikka on eri, molemmille työpaikkaohjaajille lähtee oma kysely"):
    1.1.–31.1. and 1.3.–31.5. of one tutkinnon osa at two workplaces are no jatkumo: the
    first is bundled on 1.2., the second on 1.6., each its instructor's own bundle."""
    set_today("2041-01-20")
    kt = koulutustoimija()
    student = Student()
    other = {
        "tyopaikan_nimi": "Päiväkoti Perhonen",
        "tyopaikan_ytunnus": "7654321-0",
        "ohjaaja": {"nimi": "Maija Mentori", "sahkoposti": "maija@perhonen.fi"},
    }
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(
            jakso("first", alku="2041-01-01", loppu="2041-01-31"),
            jakso("second", alku="2041-03-01", loppu="2041-05-31", **other),
        ),
    )
    await run(bundler, "tep-niputus", "2041-02-01")
    (first,) = await bundles_of(bundler, kt)
    assert first["jaksot"] == [await jakso_id(bundler, student.hoks_id, "first")]
    assert (first["ohjaaja_normalisoitu"], first["tyopaikan_ytunnus"]) == (
        "olli_ohjaaja",
        "1234567-8",
    )

    await run(bundler, "tep-niputus", "2041-06-01")
    first_again, second = await bundles_of(bundler, kt)
    assert first_again["id"] == first["id"]
    assert second["jaksot"] == [await jakso_id(bundler, student.hoks_id, "second")]
    assert (second["ohjaaja_normalisoitu"], second["tyopaikan_ytunnus"]) == (
        "maija_mentori",
        "7654321-0",
    )
    assert window(second) == ("2041-06-01", "2041-06-01", "2041-06-30")


async def test_j4_both_ways_give_one_survey_and_the_same_kesto(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4 both ways through the runs: as separate jaksot 1.1.–31.1. and 1.3.–31.5., or as
    one jakso 1.1.–31.5. with a keskeytymisajanjakso 1.2.–28.2., one bundle on 1.6.
    (31.5.'s date), none on 1.2.; each jakso keeps its own kesto (K1): 31 + 92 days,
    and the single jakso's 151 days less 28 interrupted = the same 123."""
    set_today("2042-01-20")
    kt_separate, kt_interrupted = koulutustoimija(), koulutustoimija()
    separate, interrupted = Student(), Student()
    await apply(
        bundler,
        channel,
        separate.opiskeluoikeus(koulutustoimija=kt_separate),
        interrupted.opiskeluoikeus(koulutustoimija=kt_interrupted),
        separate.hoks(
            jakso("earlier", alku="2042-01-01", loppu="2042-01-31"),
            jakso("later", alku="2042-03-01", loppu="2042-05-31"),
        ),
        interrupted.hoks(
            jakso(
                "one",
                alku="2042-01-01",
                loppu="2042-05-31",
                keskeytymisajanjaksot=[{"alku": "2042-02-01", "loppu": "2042-02-28"}],
            )
        ),
    )
    await run(bundler, "tep-niputus", "2042-02-01")
    assert await bundles_of(bundler, kt_separate) == []
    assert (await states(bundler, separate.hoks_id))["earlier"] == (
        "odottaa",
        "jatkuu_myohemmin",
        "2042-06-01",
    )

    await run(bundler, "tep-niputus", "2042-06-01")
    (together,) = await bundles_of(bundler, kt_separate)
    (single,) = await bundles_of(bundler, kt_interrupted)
    assert together["jaksot"] == sorted(
        [
            await jakso_id(bundler, separate.hoks_id, "earlier"),
            await jakso_id(bundler, separate.hoks_id, "later"),
        ]
    )
    assert single["jaksot"] == [await jakso_id(bundler, interrupted.hoks_id, "one")]
    assert window(together) == window(single) == ("2042-06-01", "2042-06-01", "2042-06-30")
    assert await kestot(bundler, separate.hoks_id) == {"earlier": 31, "later": 92}
    assert await kestot(bundler, interrupted.hoks_id) == {"one": 123}


@dataclass(frozen=True)
class LaterGone:
    """J4: a jatkumo whose later jakso is removed (`later_v2` None) or changed so that
    it becomes `ei_laheteta` (E11: osa-aikaisuus removed)."""

    earlier: tuple[str, str]
    later: tuple[str, str]
    known: str
    removed: bool
    v2_known: str
    run_date: str
    expected: tuple[str, str, str]
    """The earlier jakso's (tila, syy, niputuspvm) after the run."""
    bundle: tuple[str, str, str] | None
    """Its bundle's (niputuspvm, sent, W2), or None: in no bundle."""


LATER_GONE = {
    "removed-with-time-left": LaterGone(
        earlier=("2043-01-01", "2043-01-31"),
        later=("2043-03-01", "2043-05-31"),
        known="2043-02-10",
        removed=True,
        v2_known="2043-02-20",
        run_date="2043-03-01",
        expected=("niputettu", "niputettu", "2043-02-01"),
        bundle=("2043-02-01", "2043-03-01", "2043-03-30"),
    ),
    "ei_laheteta-with-time-left-until-w2": LaterGone(
        earlier=("2044-01-02", "2044-01-10"),
        later=("2044-01-20", "2044-02-20"),
        known="2044-01-12",
        removed=False,
        v2_known="2044-02-21",
        run_date="2044-03-01",
        expected=("niputettu", "niputettu", "2044-01-16"),
        bundle=("2044-01-16", "2044-03-01", "2044-03-15"),
    ),
    "ei_laheteta-after-the-window-closed": LaterGone(
        earlier=("2045-01-01", "2045-01-31"),
        later=("2045-03-01", "2045-05-31"),
        known="2045-02-10",
        removed=False,
        v2_known="2045-05-02",
        run_date="2045-06-01",
        expected=("ei_laheteta", "vastausaika_umpeutunut", "2045-02-01"),
        bundle=None,
    ),
}


@pytest.mark.parametrize("case", LATER_GONE.values(), ids=LATER_GONE.keys())
async def test_j4_without_its_later_jakso_the_earlier_is_judged_alone(
    bundler: Running,
    channel: AbstractChannel,
    set_today: Callable[[str], None],
    case: LaterGone,
) -> None:
    """J4: "if the later jakso is removed or becomes `ei_laheteta`, the earlier ones are
    judged on their own again as late jaksot (D3, W3)": bundled by the next run with
    their own niputuspvm while W2 leaves time (capped at niputuspvm + 59), else
    `vastausaika_umpeutunut`."""
    earlier = jakso("earlier", alku=case.earlier[0], loppu=case.earlier[1])
    later = jakso("later", alku=case.later[0], loppu=case.later[1])
    set_today(case.known)
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(earlier, later),
    )
    assert (await states(bundler, student.hoks_id))["earlier"][:2] == (
        "odottaa",
        "jatkuu_myohemmin",
    )
    set_today(case.v2_known)
    without_osa_aikaisuus = later.model_copy(update={"osa_aikaisuus": None})
    v2 = (
        student.hoks(earlier, version=2)
        if case.removed
        else student.hoks(earlier, without_osa_aikaisuus, version=2)
    )
    await apply(bundler, channel, v2)
    await run(bundler, "tep-niputus", case.run_date)
    after = await states(bundler, student.hoks_id)
    assert after["earlier"] == case.expected
    if not case.removed:
        assert after["later"][:2] == ("ei_laheteta", "osa_aikaisuus_puuttuu")
    bundles = await bundles_of(bundler, kt)
    if case.bundle is None:
        assert bundles == []
    else:
        (formed,) = bundles
        assert window(formed) == case.bundle
        assert formed["jaksot"] == [await jakso_id(bundler, student.hoks_id, "earlier")]


async def test_j4_an_earlier_jakso_known_late_joins_the_latest_bundle(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4 with late data: a HOKS first known on 20.5. with jaksot 1.1.–31.1. and
    1.3.–31.5.: on its own the first would be too late (E13, its W2 ended 1.4.), but as
    the earlier part of the jatkumo it waits and goes into the bundle of 1.6. with the
    later one (the latest's niputuspvm)."""
    set_today("2062-05-20")
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(
            jakso("earlier", alku="2062-01-01", loppu="2062-01-31"),
            jakso("later", alku="2062-03-01", loppu="2062-05-31"),
        ),
    )
    assert await states(bundler, student.hoks_id) == {
        "earlier": ("odottaa", "jatkuu_myohemmin", "2062-06-01"),
        "later": ("odottaa", "jakso_kesken", None),
    }
    await run(bundler, "tep-niputus", "2062-06-01")
    (bundle,) = await bundles_of(bundler, kt)
    assert bundle["jaksot"] == sorted(
        [
            await jakso_id(bundler, student.hoks_id, "earlier"),
            await jakso_id(bundler, student.hoks_id, "later"),
        ]
    )
    assert window(bundle) == ("2062-06-01", "2062-06-01", "2062-06-30")


async def test_j4_a_later_jakso_after_the_earlier_was_bundled_is_surveyed_alone(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4, E18: the earlier jakso bundled on 1.2.; a later jakso of the same key appearing
    afterwards leaves it as it is and gets a bundle of its own on 1.6."""
    set_today("2050-01-20")
    kt = koulutustoimija()
    student = Student()
    earlier = jakso("earlier", alku="2050-01-01", loppu="2050-01-31")
    await apply(bundler, channel, student.opiskeluoikeus(koulutustoimija=kt), student.hoks(earlier))
    await run(bundler, "tep-niputus", "2050-02-01")
    (first,) = await bundles_of(bundler, kt)

    set_today("2050-02-10")
    later = jakso("later", alku="2050-03-01", loppu="2050-05-31")
    await apply(bundler, channel, student.hoks(earlier, later, version=2))
    assert await states(bundler, student.hoks_id) == {
        "earlier": ("niputettu", "niputettu", "2050-02-01"),
        "later": ("odottaa", "jakso_kesken", None),
    }
    await run(bundler, "tep-niputus", "2050-06-01")
    first_again, second = await bundles_of(bundler, kt)
    assert (first_again["id"], first_again["jaksot"]) == (first["id"], first["jaksot"])
    assert first["jaksot"] == [await jakso_id(bundler, student.hoks_id, "earlier")]
    assert second["jaksot"] == [await jakso_id(bundler, student.hoks_id, "later")]
    assert window(second) == ("2050-06-01", "2050-06-01", "2050-06-30")


async def test_j2_a_jakso_without_tunniste_is_flagged_and_still_surveyed(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J2: a jakso without `yksiloiva-tunniste` is listed in the contact-data report
    (`tunniste-puuttuu`, to fix by its niputuspvm) and still bundled by the run."""
    set_today("2060-03-10")
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(jakso(None, alku="2060-01-12", loppu="2060-03-06")),
    )
    report = await bundler.client.get(
        "/api/v1/reports/contact-data", params={"koulutustoimija": kt}
    )
    assert report.status_code == 200, report.text
    assert [
        (r["hoks_id"], r["yksiloiva_tunniste"], r["issues"], r["korjattava_viimeistaan"])
        for r in report.json()
    ] == [(student.hoks_id, None, ["tunniste-puuttuu"], "2060-03-16")]

    await run(bundler, "tep-niputus", "2060-03-16")
    (bundle,) = await bundles_of(bundler, kt)
    (row,) = (await jaksot(bundler, student.hoks_id)).json()
    assert bundle["jaksot"] == [row["jakso_id"]]
    assert (row["tila"], row["niputuspvm"]) == ("niputettu", "2060-03-16")


async def test_j4_jaksot_ending_in_two_tiedonkeruukaudet_are_no_jatkumo(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4 with T1: the same tutkinnon osa, workplace and instructor, but loppu 20.6. and
    30.9. fall in two tiedonkeruukaudet: the first does not wait for the second and is
    bundled on its own date, 1.7."""
    set_today("2059-06-25")
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(
            jakso("spring", alku="2059-05-04", loppu="2059-06-20"),
            jakso("autumn", alku="2059-08-03", loppu="2059-09-30"),
        ),
    )
    assert await states(bundler, student.hoks_id) == {
        "spring": ("odottaa", "odottaa_niputusta", "2059-07-01"),
        "autumn": ("odottaa", "jakso_kesken", None),
    }
    await run(bundler, "tep-niputus", "2059-07-01")
    (bundle,) = await bundles_of(bundler, kt)
    assert bundle["jaksot"] == [await jakso_id(bundler, student.hoks_id, "spring")]
    assert window(bundle) == ("2059-07-01", "2059-07-01", "2059-07-30")


async def test_j4_a_jatkumo_of_three_jaksot_is_one_survey(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4: "every eligible jakso of the jatkumo goes into its bundle": two interruptions,
    three jaksot (1.1.–31.1., 1.3.–31.3., 1.5.–31.5.); both earlier ones wait for the
    last, then all three are in the bundle of 1.6."""
    set_today("2065-04-10")
    kt = koulutustoimija()
    student = Student()
    parts = {
        "first": ("2065-01-01", "2065-01-31"),
        "second": ("2065-03-01", "2065-03-31"),
        "third": ("2065-05-01", "2065-05-31"),
    }
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(*(jakso(name, alku=a, loppu=b) for name, (a, b) in parts.items())),
    )
    assert await states(bundler, student.hoks_id) == {
        "first": ("odottaa", "jatkuu_myohemmin", "2065-06-01"),
        "second": ("odottaa", "jatkuu_myohemmin", "2065-06-01"),
        "third": ("odottaa", "jakso_kesken", None),
    }
    await run(bundler, "tep-niputus", "2065-04-16")
    assert await bundles_of(bundler, kt) == []
    await run(bundler, "tep-niputus", "2065-06-01")
    (bundle,) = await bundles_of(bundler, kt)
    assert bundle["jaksot"] == sorted([await jakso_id(bundler, student.hoks_id, n) for n in parts])
    assert await kestot(bundler, student.hoks_id) == {"first": 31, "second": 31, "third": 31}


async def test_e18_a_bundled_jakso_changed_later_is_never_bundled_again(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """E18 through the runs: bundled on 16.3., then its loppu moved to 20.3. (another
    half-month): it stays `niputettu` in its bundle with its niputuspvm, the change is
    recorded but not applied, and the run of 1.4. forms nothing."""
    set_today("2066-03-10")
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(jakso("a", alku="2066-01-12", loppu="2066-03-06")),
    )
    await run(bundler, "tep-niputus", "2066-03-16")
    (bundle,) = await bundles_of(bundler, kt)

    set_today("2066-03-25")
    moved = jakso("a", alku="2066-01-12", loppu="2066-03-20")
    await apply(bundler, channel, student.hoks(moved, version=2))
    await run(bundler, "tep-niputus", "2066-04-01")
    assert await bundles_of(bundler, kt) == [bundle]
    (row,) = (await jaksot(bundler, student.hoks_id)).json()
    assert (row["tila"], row["niputuspvm"], row["loppu"], row["nippu_id"]) == (
        "niputettu",
        "2066-03-16",
        "2066-03-20",
        str(bundle["id"]),
    )
    (*_, last) = await history(bundler, row["jakso_id"])
    assert (last["from_tila"], last["applied"], last["changed"]) == ("niputettu", False, ["loppu"])


# --- W4: the end date changed -----------------------------------------------------------

#: id: ((v1 known, v1 loppu), (v2 known, v2 loppu), runs, expected state after the
#: runs, the bundle's (niputuspvm, sent, W2) or None)
W4: dict[
    str,
    tuple[
        tuple[str, str],
        tuple[str, str],
        tuple[str, ...],
        tuple[str, str, str | None],
        tuple[str, str, str] | None,
    ],
] = {
    "later-before-the-old-date": (
        ("2046-04-02", "2046-04-10"),
        ("2046-04-05", "2046-04-30"),
        ("2046-04-16", "2046-05-01"),
        ("niputettu", "niputettu", "2046-05-01"),
        ("2046-05-01", "2046-05-01", "2046-05-30"),
    ),
    "earlier-still-in-the-future": (
        ("2047-04-02", "2047-04-30"),
        ("2047-04-05", "2047-04-10"),
        ("2047-04-16",),
        ("niputettu", "niputettu", "2047-04-16"),
        ("2047-04-16", "2047-04-16", "2047-05-15"),
    ),
    "earlier-into-the-past-with-time-left": (
        ("2048-03-02", "2048-04-30"),
        ("2048-03-20", "2048-03-10"),
        ("2048-04-01",),
        ("niputettu", "niputettu", "2048-03-16"),
        ("2048-03-16", "2048-04-01", "2048-04-30"),
    ),
    "earlier-into-the-past-window-closed": (
        ("2049-01-02", "2049-04-30"),
        ("2049-03-20", "2049-01-05"),
        ("2049-04-01",),
        ("ei_laheteta", "vastausaika_umpeutunut", "2049-01-16"),
        None,
    ),
}


@pytest.mark.parametrize(("v1", "v2", "runs", "expected", "bundle"), W4.values(), ids=W4.keys())
async def test_w4_end_date_changes_through_the_runs(
    bundler: Running,
    channel: AbstractChannel,
    set_today: Callable[[str], None],
    v1: tuple[str, str],
    v2: tuple[str, str],
    runs: tuple[str, ...],
    expected: tuple[str, str, str | None],
    bundle: tuple[str, str, str] | None,
) -> None:
    """W4's four cases: moved later before the old date passed → the new date; moved
    earlier but still in the future → the new date; moved earlier into the past → the
    new date, bundled by the next run while W2 leaves time, else
    `vastausaika_umpeutunut` and never bundled. No run bundles it by its old date."""
    kt = koulutustoimija()
    student = Student()
    alku = f"{v1[1][:4]}-01-02"
    set_today(v1[0])
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(jakso("a", alku=alku, loppu=v1[1])),
    )
    set_today(v2[0])
    await apply(bundler, channel, student.hoks(jakso("a", alku=alku, loppu=v2[1]), version=2))
    for count, run_date in enumerate(runs, start=1):
        await run(bundler, "tep-niputus", run_date)
        if count < len(runs):
            assert await bundles_of(bundler, kt) == [], f"nothing on {run_date}"
    assert await states(bundler, student.hoks_id) == {"a": expected}
    bundles = await bundles_of(bundler, kt)
    if bundle is None:
        assert bundles == []
    else:
        (formed,) = bundles
        assert window(formed) == bundle
        assert formed["jaksot"] == [await jakso_id(bundler, student.hoks_id, "a")]


# --- N1: the bundle key ---------------------------------------------------------------

#: N1: two students' jaksot due on one run; id → (the second's jakso changes, its study
#: right's changes, how many bundles they form).
N1_KEY: dict[str, tuple[dict[str, Any], dict[str, Any], int]] = {
    "instructor-spelled-otherwise": ({"ohjaaja": {"nimi": "olli  OHJAAJA"}}, {}, 1),
    "workplace-named-otherwise": ({"tyopaikan_nimi": "Perhonen Oy"}, {}, 1),
    "another-instructor": ({"ohjaaja": {"nimi": "Maija Mentori"}}, {}, 2),
    "another-y-tunnus": ({"tyopaikan_ytunnus": "7654321-0"}, {}, 2),
    "another-tutkinto": (
        {},
        {"suoritukset": [{"tyyppi": "ammatillinentutkinto", "tutkinto": "351407"}]},
        2,
    ),
    "another-half-month": ({"loppu": "2064-03-20"}, {}, 2),
}


async def test_n1_the_bundle_key(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """N1: one bundle per normalised instructor name (N4) + y-tunnus + koulutustoimija +
    tutkinto + niputuspvm; the workplace's name is no part of the key. Each case has a
    koulutustoimija of its own; one run of 1.4. bundles them all."""
    set_today("2064-03-25")
    cases = {case: (koulutustoimija(), Student(), Student()) for case in N1_KEY}
    for case, (changes, study, _) in N1_KEY.items():
        kt, first, second = cases[case]
        await apply(
            bundler,
            channel,
            first.opiskeluoikeus(koulutustoimija=kt),
            second.opiskeluoikeus(koulutustoimija=kt, **study),
            first.hoks(jakso("a", alku="2064-01-13", loppu="2064-03-06")),
            second.hoks(jakso("a", **{"alku": "2064-01-13", "loppu": "2064-03-06", **changes})),
        )
    await run(bundler, "tep-niputus", "2064-04-01")
    counts = {case: len(await bundles_of(bundler, cases[case][0])) for case in N1_KEY}
    assert counts == {case: expected for case, (_, _, expected) in N1_KEY.items()}


# --- E16, E17: the contract and the study right ending -------------------------------


async def test_e16_jaksot_completed_by_the_termination_are_surveyed_tep_and_tpk(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """E16 (seed §5): oppisopimus terminated 7.3.: the jakso completed that day is
    surveyed, in the TEP bundle of 16.3. and the TPK bundle of 1.7.; the one that ran
    on past it is `sopimus_purettu` (E10) and in neither."""
    set_today("2051-03-10")
    kt = koulutustoimija()
    student = Student()
    oppisopimus = {"hankkimistapa": "oppisopimus"}
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt, oppisopimuksen_purkamispaiva="2051-03-07"),
        student.hoks(
            jakso("done", alku="2051-01-09", loppu="2051-03-07", **oppisopimus),
            jakso("running", alku="2051-02-01", loppu="2051-04-30", **oppisopimus),
        ),
    )
    await run(bundler, "tep-niputus", "2051-03-16")
    set_today("2051-05-05")
    await run(bundler, "tep-niputus", "2051-05-01")
    done = await jakso_id(bundler, student.hoks_id, "done")
    (tep,) = await bundles_of(bundler, kt)
    assert (tep["jaksot"], window(tep)) == ([done], ("2051-03-16", "2051-03-16", "2051-04-14"))
    assert await states(bundler, student.hoks_id) == {
        "done": ("niputettu", "niputettu", "2051-03-16"),
        "running": ("ei_laheteta", "sopimus_purettu", "2051-05-01"),
    }
    await run(bundler, "tpk-niputus", "2051-07-01")
    (tpk,) = await tpk_bundles_of(bundler, kt)
    assert tpk["jaksot"] == [done]


E17 = {
    # katsotaaneronneeksi from → expected (tila, syy, niputuspvm), bundled on 16.3.
    "from-loppu-surveyed": ("2025-03-07", ("niputettu", "niputettu", "2025-03-16"), True),
    "from-the-day-before-e7": (
        "2025-03-06",
        ("ei_laheteta", "opiskeluoikeus_paattynyt", "2025-03-16"),
        False,
    ),
}


async def test_e17_example_through_the_run_of_its_niputuspvm(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E17's example: loppu 2025-03-07, `katsotaaneronneeksi` from 2025-03-07 → surveyed
    (in the bundle of 16.3., kesto 54 days); from 2025-03-06 → E7, in no bundle. (The
    clock's day 20.3., after the run date, as the run of 16.3. taken up late.)"""
    kt = koulutustoimija()
    students = {case: Student() for case in E17}
    for case, (eronnut, _, _) in E17.items():
        student = students[case]
        tilat = (("2023-08-01", "lasna", "1"), (eronnut, "katsotaaneronneeksi", "1"))
        await apply(
            bundler,
            channel,
            student.opiskeluoikeus(koulutustoimija=kt, tilat=tilat),
            student.hoks(jakso("a", alku="2025-01-13", loppu="2025-03-07")),
        )
    await run(bundler, "tep-niputus", "2025-03-16")
    (bundle,) = await bundles_of(bundler, kt)
    for case, (_, expected, bundled) in E17.items():
        student = students[case]
        assert await states(bundler, student.hoks_id) == {"a": expected}, case
        row = await jakso_id(bundler, student.hoks_id, "a")
        assert (row in bundle["jaksot"]) is bundled, case
    assert await kestot(bundler, students["from-loppu-surveyed"].hoks_id) == {"a": 54}


# --- TPK ------------------------------------------------------------------------------


async def test_tpk_counts_the_tep_eligible_and_leaves_out_the_rest(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """T2 at one workplace in spring 2053: included are a bundled jakso, one still waiting
    for its niputuspvm (E15) and one whose bundle had no usable contact (C3,
    `yhteystieto_puuttuu`); left out are `ei_laheteta` for other reasons (E8
    `muu_rahoitus`, E13 `vastausaika_umpeutunut`, Arvo without a survey) and an
    entrepreneur's own apprenticeship."""
    set_today("2053-05-10")
    kt = koulutustoimija()
    names = ["bundled", "waiting", "no-contact", "arvo-404", "muu-rahoitus", "too-late", "own"]
    s = {name: Student() for name in names}
    spring = {"alku": "2053-02-03", "loppu": "2053-05-05"}
    await apply(
        bundler,
        channel,
        *(s[n].opiskeluoikeus(koulutustoimija=kt) for n in names if n != "muu-rahoitus"),
        s["muu-rahoitus"].opiskeluoikeus(koulutustoimija=kt, tilat=(("2023-08-01", "lasna", "6"),)),
        s["bundled"].hoks(jakso("a", **spring)),
        s["no-contact"].hoks(jakso("a", **spring, ohjaaja=NO_CONTACT)),
        s["arvo-404"].hoks(jakso("a", **spring, ohjaaja=AINO)),
        s["muu-rahoitus"].hoks(jakso("a", **spring)),
        s["too-late"].hoks(jakso("a", alku="2052-11-02", loppu="2053-01-05")),
        s["own"].hoks(
            jakso(
                "a",
                **spring,
                hankkimistapa="oppisopimus",
                oppisopimuksen_perusta="02",
                ohjaaja=OTTO,
            )
        ),
    )
    await run(bundler, "tep-niputus", "2053-05-16")
    by_nippu = {tuple(b["jaksot"]): b for b in await bundles_of(bundler, kt)}
    ids = {n: await jakso_id(bundler, s[n].hoks_id, "a") for n in names if n != "waiting"}
    for name, outcome in (("no-contact", "linked"), ("arvo-404", "arvo_ei_kyselya")):
        ((nippu_ids, nippu),) = [(k, b) for k, b in by_nippu.items() if ids[name] in k]
        tunniste = await tunniste_of(bundler, nippu["id"])
        await apply(
            bundler,
            channel,
            linked(nippu["id"], tunniste, list(nippu_ids), outcome=outcome, voimassa="2053-06-14"),
        )

    set_today("2053-06-25")
    await apply(
        bundler, channel, s["waiting"].hoks(jakso("a", alku="2053-04-01", loppu="2053-06-20"))
    )
    ids["waiting"] = await jakso_id(bundler, s["waiting"].hoks_id, "a")
    expected = {
        "bundled": ("niputettu", "niputettu", "2053-05-16"),
        "waiting": ("odottaa", "odottaa_niputusta", "2053-07-01"),
        "no-contact": ("ei_laheteta", "yhteystieto_puuttuu", "2053-05-16"),
        "arvo-404": ("ei_laheteta", "arvo_ei_kyselya", "2053-05-16"),
        "muu-rahoitus": ("ei_laheteta", "muu_rahoitus", "2053-05-16"),
        "too-late": ("ei_laheteta", "vastausaika_umpeutunut", "2053-01-16"),
        "own": ("niputettu", "niputettu", "2053-05-16"),
    }
    assert {n: (await states(bundler, s[n].hoks_id))["a"] for n in names} == expected

    set_today("2053-06-30")
    await run(bundler, "tpk-niputus", "2053-07-01")
    (tpk,) = await tpk_bundles_of(bundler, kt)
    assert tpk["jaksot"] == sorted(ids[n] for n in ("bundled", "waiting", "no-contact"))


#: T4: the autumn's answer window ends with February, 29 days in a leap year.
AUTUMN = {"leap-year": ("2055", "2056-02-29"), "common-year": ("2056", "2057-02-28")}


@pytest.mark.parametrize(("year", "last_day"), AUTUMN.values(), ids=AUTUMN.keys())
async def test_tpk_on_1_1_bundles_the_autumn_until_the_end_of_february(
    bundler: Running,
    channel: AbstractChannel,
    set_today: Callable[[str], None],
    year: str,
    last_day: str,
) -> None:
    """T1, T4: the run of 1.1. forms the autumn's bundles (1.7.–31.12.), answered
    1.1.–end of February; a spring jakso of the same year is not in them."""
    kt = koulutustoimija()
    autumn, spring = Student(), Student()
    set_today(f"{year}-07-05")  # each known after its end, before its W2 closes (E15)
    await apply(
        bundler,
        channel,
        autumn.opiskeluoikeus(koulutustoimija=kt),
        spring.opiskeluoikeus(koulutustoimija=kt),
        spring.hoks(jakso("a", alku=f"{year}-03-02", loppu=f"{year}-06-30")),
    )
    set_today(f"{year}-10-20")
    await apply(
        bundler, channel, autumn.hoks(jakso("a", alku=f"{year}-08-04", loppu=f"{year}-10-09"))
    )
    assert (await states(bundler, spring.hoks_id))["a"][:2] == ("odottaa", "odottaa_niputusta")
    next_year = str(int(year) + 1)
    await run(bundler, "tpk-niputus", f"{next_year}-01-01")
    (tpk,) = await tpk_bundles_of(bundler, kt)
    assert tpk["jaksot"] == [await jakso_id(bundler, autumn.hoks_id, "a")]
    assert [
        str(tpk[k])
        for k in ("kausi_alku", "kausi_loppu", "vastaamisajan_alkupvm", "vastaamisajan_loppupvm")
    ] == [f"{year}-07-01", f"{year}-12-31", f"{next_year}-01-01", last_day]


# --- K: kesto -------------------------------------------------------------------------

#: K3's examples and K1's equal split. id: (jaksot of one student as (alku, loppu,
#: osa-aikaisuus, interruption or None), expected kesto of each)
K_EXAMPLES: dict[str, tuple[list[tuple[str, str, int, tuple[str, str] | None]], list[int]]] = {
    "4-days-at-40%": ([("2058-03-02", "2058-03-05", 40, None)], [2]),
    "107-days-9-interrupted-at-80%": (
        [("2057-11-26", "2058-03-12", 80, ("2058-01-05", "2058-01-13"))],
        [78],
    ),
    "10-days-1-interrupted-at-100%": (
        [("2058-03-01", "2058-03-10", 100, ("2058-03-05", "2058-03-05"))],
        [9],
    ),
    "three-active-share-each-day": ([("2058-03-04", "2058-03-09", 100, None)] * 3, [2, 2, 2]),
}


async def test_k_examples_kesto_when_the_bundle_is_formed(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """K1–K3 through the TEP run of 16.3.2058: 4 days at 40% → 2 (1.6); 107 days with a
    9-day interruption at 80% → 78 (78.4); 10 days with a 1-day interruption → 9; three
    jaksot active on the same 6 days → 1/3 of each day each → 2."""
    set_today("2058-03-13")
    kt = koulutustoimija()
    students = {case: Student() for case in K_EXAMPLES}
    for case, (rows, _) in K_EXAMPLES.items():
        payloads = [
            jakso(
                f"k{n}",
                alku=alku,
                loppu=loppu,
                osa_aikaisuus=osa,
                keskeytymisajanjaksot=[]
                if pause is None
                else [{"alku": pause[0], "loppu": pause[1]}],
                tutkinnon_osa={
                    "kind": "ammatillinen",
                    "koodi_uri": f"tutkinnonosat_10{n}",
                    "koodi": f"10{n}",
                },
            )
            for n, (alku, loppu, osa, pause) in enumerate(rows)
        ]
        student = students[case]
        await apply(
            bundler,
            channel,
            student.opiskeluoikeus(koulutustoimija=kt),
            student.hoks(*payloads),
        )
    await run(bundler, "tep-niputus", "2058-03-16")
    (bundle,) = await bundles_of(bundler, kt)
    assert len(bundle["jaksot"]) == 6
    for case, (_, expected) in K_EXAMPLES.items():
        got = await kestot(bundler, students[case].hoks_id)
        assert [got[f"k{n}"] for n in range(len(expected))] == expected, case


async def test_k1_days_of_a_temporarily_interrupted_study_right_do_not_count(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """K1: a `valiaikaisestikeskeytynyt` state from 1.2. lasts until the next state's
    start − 1 (lasna from 11.2.): 10 of the jakso's 59 days are not active → 49. Not on
    loppu, so no E7."""
    set_today("2061-03-13")
    kt = koulutustoimija()
    student = Student()
    tilat = (
        ("2023-08-01", "lasna", "1"),
        ("2061-02-01", "valiaikaisestikeskeytynyt", "1"),
        ("2061-02-11", "lasna", "1"),
    )
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt, tilat=tilat),
        student.hoks(jakso("a", alku="2061-01-12", loppu="2061-03-11")),
    )
    await run(bundler, "tep-niputus", "2061-03-16")
    (bundle,) = await bundles_of(bundler, kt)
    assert bundle["jaksot"] == [await jakso_id(bundler, student.hoks_id, "a")]
    assert await kestot(bundler, student.hoks_id) == {"a": 49}
