"""Keeping a HOKS's jaksot current (services.bundler.domain.changes): E14, E18, J4, W4,
and what each re-evaluation records (field names only)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.bundler.domain.changes import (
    JaksoChange,
    StoredJakso,
    changed_fields,
    context_changes,
    judge_hoks,
    with_removed,
)
from services.bundler.domain.eligibility import JaksoState, LoppuMuutos, Syy, Tila
from services.bundler.domain.jakso import Jakso, Ohjaaja
from tests.unit.domain.builders import d, hoks, jakso, opiskeluoikeus

TODAY = d("2024-03-20")
E15 = JaksoState(Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA)
NIPUTETTU = JaksoState(Tila.NIPUTETTU)


def stored(
    j: Jakso, state: JaksoState = E15, rule: str = "E15", pvm: str = "2024-03-16"
) -> StoredJakso:
    return StoredJakso(j, state, rule, d(pvm))


def judge(
    jaksot: list[Jakso], *before: StoredJakso, context: tuple[str, ...] = ()
) -> dict[str, JaksoChange]:
    changes = judge_hoks(
        hoks=hoks(),
        jaksot=jaksot,
        stored={s.jakso.id: s for s in before},
        opiskeluoikeus=opiskeluoikeus(),
        today=TODAY,
        context=context,
    )
    return {c.jakso.id.tunniste: c for c in changes}


def test_a_new_jakso_is_judged_and_recorded() -> None:
    (change,) = judge([jakso()]).values()
    assert (change.state, change.rule, change.niputuspvm) == (E15, "E15", d("2024-03-16"))
    assert change.recorded and change.loppu_muutos is None
    assert change.transition.old is None and change.transition.changed == ()
    assert (change.ohjaaja_normalisoitu, change.tyopaikka_normalisoitu) == (
        "olli_ohjaaja",
        "perhosen_paivakoti",
    )


def test_nothing_changed_records_nothing() -> None:
    (change,) = judge([jakso()], stored(jakso())).values()
    assert not change.recorded
    assert change.loppu_muutos is LoppuMuutos.UNCHANGED


def test_a_changed_field_is_recorded_by_name_only() -> None:
    new = jakso(sahkoposti="uusi@perhonen.fi")
    (change,) = judge([new], stored(jakso())).values()
    assert change.recorded
    assert change.transition.changed == ("ohjaaja.sahkoposti",)


def test_a_changed_judgement_alone_is_recorded_with_its_context() -> None:
    """E3 → E15: the study right arrived; the jakso itself did not change."""
    before = stored(jakso(), JaksoState(Tila.ODOTTAA, Syy.OPISKELUOIKEUS_PUUTTUU), "E3")
    (change,) = judge([jakso()], before, context=("opiskeluoikeus",)).values()
    assert change.recorded and change.transition.changed == ("opiskeluoikeus",)
    assert change.state == E15


@pytest.mark.parametrize(
    ("old", "new", "muutos"),
    [
        ("2024-04-10", "2024-04-30", LoppuMuutos.LATER),
        ("2024-04-30", "2024-04-10", LoppuMuutos.EARLIER_FUTURE),
        ("2024-04-30", "2024-03-10", LoppuMuutos.EARLIER_PAST),
    ],
    ids=["W4-later", "W4-earlier-future", "W4-earlier-past"],
)
def test_w4_the_kind_of_end_date_change_is_kept(old: str, new: str, muutos: LoppuMuutos) -> None:
    before = stored(jakso(loppu=old), JaksoState(Tila.ODOTTAA, Syy.JAKSO_KESKEN), "E1")
    (change,) = judge([jakso(loppu=new)], before).values()
    assert change.loppu_muutos is muutos
    assert change.transition.changed == ("loppu",)


def test_e14_a_jakso_missing_from_the_new_version_is_removed() -> None:
    a, b = jakso(tunniste="a"), jakso(tunniste="b")
    current = with_removed([a], {s.jakso.id: s for s in (stored(a), stored(b))})
    assert [(j.id.tunniste, j.poistettu) for j in current] == [("a", False), ("b", True)]
    changes = judge(current, stored(a), stored(b))
    assert changes["b"].state == JaksoState(Tila.EI_LAHETETA, Syy.JAKSO_POISTETTU)
    assert changes["b"].transition.changed == ("poistettu",)
    assert not changes["a"].recorded


def test_e18_a_bundled_jakso_keeps_its_state_and_records_the_change() -> None:
    before = stored(jakso(), NIPUTETTU, "E15")
    (change,) = judge([jakso(loppu="2024-03-18")], before).values()
    assert change.recorded and not change.applied
    assert (change.state, change.rule, change.niputuspvm) == (NIPUTETTU, "E15", d("2024-03-16"))
    assert change.evaluated.tila is Tila.ODOTTAA


def test_e18_a_bundled_jakso_records_a_changed_study_right_but_not_a_repeat() -> None:
    before = stored(jakso(), NIPUTETTU, "E15")
    (repeat,) = judge([jakso()], before).values()
    (context,) = judge([jakso()], before, context=("opiskeluoikeus.tyyppi",)).values()
    assert not repeat.recorded
    assert context.recorded and not context.applied


def test_j4_every_jakso_of_the_hoks_is_judged_together() -> None:
    earlier = jakso("2024-01-01", "2024-01-31", tunniste="a")
    later = jakso("2024-03-01", "2024-05-31", tunniste="b")
    changes = judge([earlier, later])
    assert (changes["a"].rule, changes["a"].state.syy) == ("J4", Syy.JATKUU_MYOHEMMIN)
    assert changes["b"].state.syy is Syy.JAKSO_KESKEN


def test_names_are_none_when_missing() -> None:
    (change,) = judge([replace(jakso(tyopaikka=" "), ohjaaja=Ohjaaja())]).values()
    assert (change.ohjaaja_normalisoitu, change.tyopaikka_normalisoitu) == (None, None)


def test_context_names_what_changed_around_the_jaksot() -> None:
    assert context_changes(old_hoks=hoks(), new_hoks=hoks(poistettu=True)) == ("hoks.poistettu",)
    assert context_changes(new_opiskeluoikeus=opiskeluoikeus()) == ("opiskeluoikeus",)
    assert context_changes(
        old_opiskeluoikeus=opiskeluoikeus(),
        new_opiskeluoikeus=opiskeluoikeus(oppisopimuksen_purkamispaiva="2024-03-01"),
    ) == ("opiskeluoikeus.oppisopimuksen_purkamispaiva",)
    assert context_changes(new_hoks=hoks()) == ()


def test_changed_fields_of_values_that_are_not_dataclasses() -> None:
    assert changed_fields(1, 1, "x.") == ()
    assert changed_fields(1, 2, "x.") == ("x",)
    assert changed_fields(1, 2) == ("*",)
