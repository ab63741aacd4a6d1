"""J2 and the study-right helpers (services.bundler.domain.jakso)."""

from services.bundler.domain.jakso import JaksoId
from tests.unit.domain.builders import d, jakso, opiskeluoikeus


def test_jakso_identity() -> None:
    """J2: yksiloiva-tunniste identifies a jakso; without it, the path does (and is flagged)."""
    with_id = jakso(hoks_id=7, tunniste="abc")
    without_id = jakso(hoks_id=7, tunniste=None)
    assert with_id.id == JaksoId(7, "abc")
    assert not with_id.tunniste_puuttuu
    assert without_id.id == JaksoId(7, without_id.path, is_path=True)
    assert without_id.tunniste_puuttuu


def test_study_right_states_last_until_the_next_one() -> None:
    oo = opiskeluoikeus(
        opiskeluoikeusjaksot=(
            ("2024-03-01", "valiaikaisestikeskeytynyt", "1"),
            ("2020-08-01", "lasna", "1"),
            ("2024-04-01", "lasna", "1"),
            ("2024-06-01", "valiaikaisestikeskeytynyt", "1"),
        )
    )
    assert oo.periods_in("valiaikaisestikeskeytynyt") == (
        (d("2024-03-01"), d("2024-03-31")),
        (d("2024-06-01"), None),
    )
    assert oo.tila_on(d("2020-07-31")) is None
    state = oo.tila_on(d("2024-03-31"))
    assert state is not None and state.tila == "valiaikaisestikeskeytynyt"
