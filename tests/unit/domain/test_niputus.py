"""N1–N3, J3, J4, D3 and W3 in a TEP run (services.bundler.domain.niputus)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bundler.domain.eligibility import evaluate
from services.bundler.domain.jakso import JaksoId, Opiskeluoikeus, TutkinnonOsa
from services.bundler.domain.niputus import (
    NippuKey,
    NiputusCandidate,
    candidate,
    is_tep_run_date,
    nippu_jakso,
    nippu_key,
    niputa,
)
from shared.domain.dates import DEFAULT_POLICIES, POLICIES_WITH_2025_AMENDMENT, niputuspvm
from shared.domain.koodisto import Hankkimistapa
from shared.events import NippuJaksoPayload
from tests.unit.domain.builders import d, hoks, jakso, opiskeluoikeus

RUN = d("2024-03-16")
BASE: dict[str, Any] = {"alku": "2024-01-08", "loppu": "2024-03-15"}


def cand(
    tunniste: str,
    *,
    niputus: str = "2024-03-16",
    tutkinto: str = "351301",
    koulutustoimija: str = "1.2.246.562.10.1",
    **jakso_fields: Any,
) -> NiputusCandidate:
    fields = {**BASE, **jakso_fields}
    oo = opiskeluoikeus(tutkinto=tutkinto, koulutustoimija=koulutustoimija)
    return candidate(jakso(tunniste=tunniste, **fields), oo, d(niputus))


def bundles(*candidates: NiputusCandidate, run: date = RUN) -> list[list[str]]:
    return [[j.tunniste for j in n.jaksot] for n in niputa(candidates, run).niput]


def test_nippu_key_components() -> None:
    """N1: normalised instructor + y-tunnus + koulutustoimija + tutkinto + niputuspvm."""
    key = nippu_key(
        jakso(ohjaaja=" Örjan  Ohjaaja ", y_tunnus=" 1234567-8 "),
        opiskeluoikeus(tutkinto="351301", koulutustoimija="1.2.246.562.10.1"),
        d("2024-03-16"),
    )
    assert key == NippuKey(
        "orjan_ohjaaja", "1234567-8", "1.2.246.562.10.1", "351301", d("2024-03-16")
    )


@pytest.mark.parametrize(
    ("second", "together"),
    [
        ({}, True),
        ({"ohjaaja": "OLLI  ohjaaja"}, True),
        ({"tutkinnon_osa": "tutkinnonosat_100001"}, True),
        ({"tyopaikka": "Perhonen Oy"}, True),
        ({"ohjaaja": "Toinen Ohjaaja"}, False),
        ({"y_tunnus": "7654321-0"}, False),
        ({"koulutustoimija": "1.2.246.562.10.2"}, False),
        ({"tutkinto": "351407"}, False),
        ({"niputus": "2024-03-01"}, False),
    ],
    ids=[
        "N1-same-key",
        "N1-instructor-spelling-normalised",
        "N1-other-tutkinnon-osa-same-key",
        "N1-workplace-name-not-in-key",
        "N1-other-instructor",
        "J3-other-workplace",
        "N1-other-koulutustoimija",
        "N1-other-tutkinto",
        "N1-other-niputuspvm",
    ],
)
def test_jaksot_with_the_same_key_share_a_bundle(second: dict[str, Any], together: bool) -> None:
    result = bundles(cand("a"), cand("b", **second))
    assert sorted(result) == ([["a", "b"]] if together else [["a"], ["b"]])


def test_n1_two_jaksot_ending_in_the_same_half_month_form_one_bundle() -> None:
    """N1: same workplace and instructor, both ending 1–15 March; not if one ended in
    February (that is J4's case, decided per HOKS in test_jatkumo)."""
    first = cand("a", alku="2024-01-02", loppu="2024-02-29", niputus="2024-03-01")
    assert bundles(
        cand("a", alku="2024-01-02", loppu="2024-03-05"), cand("b", alku="2024-02-01")
    ) == [["a", "b"]]
    assert bundles(first, cand("b")) == [["a"], ["b"]]


def test_j4_seed_example_one_jakso_with_an_interruption_is_surveyed_on_31_5() -> None:
    """J4 seed: 1.1–31.1 and 1.3–31.5 at one workplace → one survey, based on 31.5.

    Recorded as one jakso 1.1–31.5 with the break as a keskeytymisajanjakso, it gets
    one niputuspvm (1.6.) and one bundle; the break does not stop it (E9).
    """
    seed = jakso(
        alku="2024-01-01", loppu="2024-05-31", keskeytykset=(("2024-02-01", "2024-02-29"),)
    )
    result = evaluate(seed, hoks(), opiskeluoikeus(), d("2024-06-01"))
    assert (result.rule, result.niputuspvm) == ("E15", d("2024-06-01"))
    assert result.niputuspvm is not None
    nippu = niputa([candidate(seed, opiskeluoikeus(), result.niputuspvm)], d("2024-06-01")).niput
    assert [n.jaksot for n in nippu] == [(seed.id,)]


def test_n3_a_single_jakso_waits_for_its_niputuspvm() -> None:
    lone = cand("a")
    early = niputa([lone], d("2024-03-15"))
    assert (early.niput, early.not_due) == ((), (lone.jakso_id,))
    assert [n.jaksot for n in niputa([lone], RUN).niput] == [(lone.jakso_id,)]


def test_d3_late_jakso_keeps_its_own_niputuspvm() -> None:
    late = cand("late", alku="2024-01-08", loppu="2024-02-20", niputus="2024-03-01")
    result = niputa([late, cand("due")], RUN)
    assert [(n.key.niputuspvm, [j.tunniste for j in n.jaksot]) for n in result.niput] == [
        (d("2024-03-01"), ["late"]),
        (d("2024-03-16"), ["due"]),
    ]


def test_w3_a_jakso_whose_window_closed_is_not_bundled() -> None:
    """W3/E13: niputuspvm 2024-01-16 + 59 = 2024-03-15 < run 2024-03-16."""
    stale = cand("stale", loppu="2024-01-10", niputus="2024-01-16")
    result = niputa([stale, cand("due")], RUN)
    assert result.window_closed == (stale.jakso_id,)
    assert [[j.tunniste for j in n.jaksot] for n in result.niput] == [["due"]]


def test_n2_bundle_tunniste() -> None:
    (nippu,) = niputa(
        [cand("b", tyopaikka="Perhosen Päiväkoti"), cand("a", tyopaikka="X")], RUN
    ).niput
    assert nippu.tyopaikka == "X"  # the first jakso's name, whatever the input order
    assert nippu.tunniste("9f") == "x_2024-03-16_9f"


def test_a_jakso_is_a_candidate_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        niputa([cand("a"), cand("a")], RUN)


@pytest.mark.parametrize(
    "broken",
    [{"ohjaaja": None}, {"y_tunnus": None}, {"y_tunnus": "  "}],
    ids=["E12-no-instructor", "E12-no-y-tunnus", "E12-blank-y-tunnus"],
)
def test_key_refuses_jaksot_that_fail_e12(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="E5 or E12"):
        nippu_key(jakso(**broken), opiskeluoikeus(), RUN)


def test_key_refuses_jaksot_that_fail_e5() -> None:
    with pytest.raises(ValueError, match="E5 or E12"):
        nippu_key(jakso(), opiskeluoikeus(suoritustyyppi="telma"), RUN)


@pytest.mark.parametrize(
    "study_right",
    [
        replace(opiskeluoikeus(), koulutustoimija_oid=None),
        replace(
            opiskeluoikeus(),
            suoritukset=(replace(opiskeluoikeus().suoritukset[0], tutkinto=None),),
        ),
    ],
    ids=["N1-no-koulutustoimija", "N1-no-tutkinto"],
)
def test_key_refuses_a_study_right_without_koulutustoimija_or_tutkinto(
    study_right: Opiskeluoikeus,
) -> None:
    with pytest.raises(ValueError, match="no koulutustoimija or tutkinto"):
        nippu_key(jakso(), study_right, RUN)


KEYS = [
    NippuKey(ohjaaja, "1234567-8", "1.2.246.562.10.1", "351301", d(pvm))
    for ohjaaja in ("olli", "maija")
    for pvm in ("2024-01-16", "2024-03-01", "2024-03-16", "2024-04-01")
]
candidate_lists = st.lists(
    st.builds(
        NiputusCandidate,
        jakso_id=st.builds(JaksoId, st.integers(1, 5), st.sampled_from(["a", "b", "c"])),
        key=st.sampled_from(KEYS),
        tyopaikan_nimi=st.sampled_from(["Perhonen", "Päiväkoti"]),
    ),
    unique_by=lambda c: c.jakso_id,
    max_size=15,
)


@given(candidates=candidate_lists, data=st.data())
def test_bundling_is_independent_of_input_order(
    candidates: list[NiputusCandidate], data: st.DataObject
) -> None:
    """N1 property: any permutation of the candidates gives the same run result, and
    every candidate lands exactly once."""
    shuffled = data.draw(st.permutations(candidates))
    result = niputa(candidates, RUN)
    assert niputa(shuffled, RUN) == result
    placed = [j for n in result.niput for j in n.jaksot]
    placed += [*result.not_due, *result.window_closed]
    assert sorted(placed) == sorted(c.jakso_id for c in candidates)
    for nippu in result.niput:
        members = [c for c in candidates if c.jakso_id in nippu.jaksot]
        assert {c.key for c in members} == {nippu.key}


def test_candidate_uses_the_evaluated_niputuspvm() -> None:
    c = candidate(replace(jakso(), tyopaikan_nimi=None), opiskeluoikeus(), RUN)
    assert (c.key.niputuspvm, c.tyopaikan_nimi) == (RUN, "")


@pytest.mark.parametrize(
    ("day", "due"),
    [
        ("2025-03-01", True),
        ("2025-03-16", True),
        ("2025-02-01", True),
        ("2025-03-15", False),
        ("2025-03-17", False),
        ("2025-03-31", False),
    ],
)
def test_tep_run_is_due_on_bundling_dates(day: str, due: bool) -> None:
    """D1/D2, D3: every niputuspvm is a 1st or a 16th; the scheduler runs TEP then."""
    assert is_tep_run_date(d(day)) is due


@given(loppu=st.dates(date(2021, 7, 1), date(2030, 12, 31)))
def test_every_niputuspvm_is_a_tep_run_date(loppu: date) -> None:
    """D1, D2: whichever policy, a jakso's niputuspvm is a day the TEP run is due."""
    for policies in (DEFAULT_POLICIES, POLICIES_WITH_2025_AMENDMENT):
        assert is_tep_run_date(niputuspvm(loppu, policies))


ARVO_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ammatillinen-koulutussopimus": (
        {},
        {
            "tutkinnon_osa": "106945",
            "paikallinen_tutkinnon_osa": None,
            "sopimustyyppi": "koulutussopimus",
            "oppisopimuksen_perusta": None,
        },
    ),
    "paikallinen": (
        {"tutkinnon_osa": TutkinnonOsa("paikallinen", nimi="Oma osa")},
        {"tutkinnon_osa": None, "paikallinen_tutkinnon_osa": "Oma osa"},
    ),
    "yrittajan-oppisopimus": (
        {"hankkimistapa": Hankkimistapa.OPPISOPIMUS, "oppisopimuksen_perusta": "02"},
        {"sopimustyyppi": "oppisopimus", "oppisopimuksen_perusta": "02"},
    ),
    "part-time": ({"osa_aikaisuus": 60}, {"osa_aikaisuus": 60}),
}


@pytest.mark.parametrize(("changes", "expected"), ARVO_CASES.values(), ids=ARVO_CASES.keys())
def test_nippu_jakso_has_what_arvo_needs(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    """arvo-api.md POST vastaajatunnus: each jakso's background data, from the jakso, its
    study right and the bundle key; `rahoituskausi_pvm` is the jakso's end date."""
    base = jakso(alku="2024-01-08", loppu="2024-03-15", tutkinnon_osa="tutkinnonosat_106945")
    j = replace(
        base,
        tutkinnon_osa=replace(base.tutkinnon_osa, koodi="106945"),
        tyopaikan_nimi=" Perhosen Päiväkoti ",
    )
    j = replace(j, **changes)
    oo = opiskeluoikeus()
    key = nippu_key(j, oo, d("2024-03-16"))
    payload = nippu_jakso(42, j, oo, key, 17).model_dump(mode="json")
    common = {
        "jakso_id": 42,
        "koulutustoimija_oid": oo.koulutustoimija_oid,
        "oppilaitos_oid": oo.oppilaitos_oid,
        "toimipiste_oid": oo.suoritukset[0].toimipiste_oid,
        "tyonantaja": "1234567-8",
        "tyopaikka": "Perhosen Päiväkoti",
        "tyopaikka_normalisoitu": "perhosen_paivakoti",
        "tutkintotunnus": "351301",
        "tutkintonimike": ["10024"],
        "osaamisala": ["1525"],
        "tyopaikkajakson_alkupvm": "2024-01-08",
        "tyopaikkajakson_loppupvm": "2024-03-15",
        "rahoituskausi_pvm": "2024-03-15",
        "osa_aikaisuus": 100,
        "kesto": 17,
    }
    assert payload == {**payload, **common, **expected}
    assert set(payload) == set(NippuJaksoPayload.model_fields)
