"""The demo's data set: seeded, valid for the ingest, and covering every case it claims."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from demo.generate import EXPECTED, WEIGHTS, Case, Dataset, generate, ytunnus
from services.ingest.domain.hoks import ParsedHoks, parse_hoks
from services.ingest.domain.opiskeluoikeus import ParsedOpiskeluoikeus, parse_opiskeluoikeus

START = dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=7, start=START, students=200)


def parsed_hoks(dataset: Dataset, case: Case) -> list[ParsedHoks]:
    return [
        parse_hoks(int(u.key), u.document)
        for u in dataset.upserts
        if u.kind == "hoks" and u.case is case and u.day == START
    ]


def test_the_same_seed_gives_the_same_documents_and_another_seed_other_ids() -> None:
    first, again = generate(seed=3, students=50), generate(seed=3, students=50)
    assert json.dumps([u.document for u in first.upserts]) == json.dumps(
        [u.document for u in again.upserts]
    )
    other = generate(seed=4, students=50)
    assert not {s.hoks_id for s in first.students} & {s.hoks_id for s in other.students}
    assert not {p.oid for p in first.providers} & {p.oid for p in other.providers}


def test_every_document_is_one_the_ingest_accepts(dataset: Dataset) -> None:
    for upsert in dataset.upserts:
        if upsert.kind == "hoks":
            assert parse_hoks(int(upsert.key), upsert.document).jaksot, upsert.case
        elif upsert.kind == "opiskeluoikeus":
            parsed = parse_opiskeluoikeus(upsert.key, upsert.document)
            assert parsed.koulutustoimija_oid in {p.oid for p in dataset.providers}
        else:
            assert upsert.document is None


def test_every_case_is_there_with_its_expected_outcome(dataset: Dataset) -> None:
    counts = Counter(student.case for student in dataset.students)
    assert set(counts) == set(Case) == set(WEIGHTS) == set(EXPECTED)
    assert len(dataset.students) == 200
    assert len(dataset.providers) == 3
    assert {s.hoks_id for s in dataset.students} == {
        int(u.key) for u in dataset.upserts if u.kind == "hoks"
    }


def test_jaksot_end_across_the_months_of_the_half_year(dataset: Dataset) -> None:
    months = {s.loppu.month for s in dataset.students}
    assert {1, 2, 3, 4, 5} <= months
    assert all(START < s.loppu <= dataset.end for s in dataset.students)


def test_j4_recorded_both_ways(dataset: Dataset) -> None:
    for hoks in parsed_hoks(dataset, Case.J4_KAHTENA_JAKSONA):
        first, later = sorted(hoks.jaksot, key=lambda j: j.alku)
        assert first.tutkinnon_osa == later.tutkinnon_osa
        assert (first.tyopaikan_ytunnus, first.ohjaaja) == (later.tyopaikan_ytunnus, later.ohjaaja)
        assert first.loppu is not None and first.loppu < later.alku
    for hoks in parsed_hoks(dataset, Case.J4_KESKEYTYMISENA):
        (jakso,) = hoks.jaksot
        (pause,) = jakso.keskeytymisajanjaksot
        assert jakso.alku < pause.alku and pause.loppu is not None and jakso.loppu is not None
        assert pause.loppu < jakso.loppu


def test_contacts_missing_phone_only_and_conflicting(dataset: Dataset) -> None:
    for hoks in parsed_hoks(dataset, Case.EI_YHTEYSTIETOJA):
        ohjaaja = hoks.jaksot[0].ohjaaja
        assert ohjaaja is not None and (ohjaaja.sahkoposti, ohjaaja.puhelinnumero) == (None, None)
    for hoks in parsed_hoks(dataset, Case.VAIN_PUHELIN):
        ohjaaja = hoks.jaksot[0].ohjaaja
        assert ohjaaja is not None and ohjaaja.sahkoposti is None and ohjaaja.puhelinnumero
    for hoks in parsed_hoks(dataset, Case.RISTIRIITAISET_YHTEYSTIEDOT):
        emails = {j.ohjaaja.sahkoposti for j in hoks.jaksot if j.ohjaaja}
        names = {j.ohjaaja.nimi for j in hoks.jaksot if j.ohjaaja}
        assert len(emails) == 2 and len(names) == 1


def test_part_time_missing_osa_aikaisuus_and_entrepreneur(dataset: Dataset) -> None:
    assert all(
        h.jaksot[0].osa_aikaisuus in (40, 50, 60, 80)
        for h in parsed_hoks(dataset, Case.OSA_AIKAINEN)
    )
    assert all(
        h.jaksot[0].osa_aikaisuus is None for h in parsed_hoks(dataset, Case.OSA_AIKAISUUS_PUUTTUU)
    )
    assert all(
        h.jaksot[0].oppisopimuksen_perusta == "02"
        for h in parsed_hoks(dataset, Case.YRITTAJAN_OPPISOPIMUS)
    )
    assert all(h.is_tuva for h in parsed_hoks(dataset, Case.TUVA))


def study_right(dataset: Dataset, case: Case) -> list[ParsedOpiskeluoikeus]:
    return [
        parse_opiskeluoikeus(u.key, u.document)
        for u in dataset.upserts
        if u.kind == "opiskeluoikeus" and u.case is case
    ]


def test_terminated_contract_falls_between_the_two_jaksot(dataset: Dataset) -> None:
    hokses = parsed_hoks(dataset, Case.SOPIMUS_PURETTU)
    rights = study_right(dataset, Case.SOPIMUS_PURETTU)
    assert hokses and len(hokses) == len(rights)
    for hoks in hokses:
        (right,) = (r for r in rights if r.oid == hoks.opiskeluoikeus_oid)
        first, second = sorted(hoks.jaksot, key=lambda j: j.alku)
        purettu = right.oppisopimuksen_purkamispaiva
        assert first.loppu is not None and second.loppu is not None and purettu is not None
        assert first.loppu <= purettu < second.loppu


def test_study_right_states_for_e7_and_e8(dataset: Dataset) -> None:
    assert all(
        any(t.tila == "eronnut" for t in r.opiskeluoikeusjaksot)
        for r in study_right(dataset, Case.ERONNUT)
    )
    assert all(
        r.opiskeluoikeusjaksot[-1].opintojen_rahoitus == "6"
        for r in study_right(dataset, Case.MUU_RAHOITUS)
    )


@pytest.mark.parametrize(
    ("case", "note"),
    [
        (Case.LOPPU_MYOHEMMAKSI, "later"),
        (Case.LOPPU_AIEMMAKSI, "earlier, still ahead"),
        (Case.LOPPU_MENNEESEEN, "into the past"),
    ],
    ids=["W4-later", "W4-earlier-future", "W4-earlier-past"],
)
def test_late_corrections_move_loppu_as_w4_describes(
    dataset: Dataset, case: Case, note: str
) -> None:
    corrections = [u for u in dataset.upserts if u.case is case and u.day > START]
    assert corrections
    for correction in corrections:
        assert note in correction.note
        (before,) = (
            u
            for u in dataset.upserts
            if u.key == correction.key and u.day == START and u.kind == "hoks"
        )
        old = parse_hoks(int(before.key), before.document).jaksot[0].loppu
        new = parse_hoks(int(correction.key), correction.document).jaksot[0].loppu
        assert old is not None and new is not None
        assert correction.day < old, "the correction comes before the old date passed"
        if case is Case.LOPPU_MYOHEMMAKSI:
            assert new > old
        elif case is Case.LOPPU_AIEMMAKSI:
            assert correction.day < new < old
        else:
            assert new < correction.day


def test_late_study_right_deletions_and_contact_fixes_come_later(dataset: Dataset) -> None:
    late = {u.case for u in dataset.upserts if u.day > START}
    assert {Case.OPISKELUOIKEUS_MYOHASSA, Case.HOKS_POISTETTU, Case.YHTEYSTIETO_KORJATTU} <= late
    deletions = [u for u in dataset.upserts if u.kind == "hoks_delete"]
    assert deletions and all(u.case is Case.HOKS_POISTETTU for u in deletions)


@pytest.mark.parametrize(
    ("number", "expected"), [(1572860, "1572860-0"), (2345678, "2345678-0"), (1234567, "1234567-1")]
)
def test_ytunnus_check_digit(number: int, expected: str) -> None:
    assert ytunnus(number) == expected
