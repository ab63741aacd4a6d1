"""J4: jaksot recorded separately for one temporary interruption form a *jatkumo*,
surveyed once, with its latest jakso.

Jaksot of one HOKS with the same tutkinnon osa (koodi-uri, and osa-alue for yhteiset),
the same workplace y-tunnus and the same normalised instructor name (N4), whose `loppu`
dates fall in the same tiedonkeruukausi (T1), share a `JatkumoKey`. Within a key, the
latest jakso still `odottaa` is the jatkumo's *latest*; the jaksot that ended before it
started are its *earlier* ones. An earlier jakso waits (`jatkuu_myohemmin`) while the
latest is undecided, and joins the latest's bundle (its niputuspvm, N1) once the latest
is eligible. A jakso that is removed, `ei_laheteta` (other than for its own closed
window, which the latest's date replaces), or already bundled (E18) is no part of a
jatkumo, so the others are judged on their own again (D3, W3).

`evaluate_hoks` is the decision for one HOKS; its result prints as a table of
(jakso, rule, tila, syy, niputuspvm).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from services.bundler.domain.eligibility import (
    Eligibility,
    JaksoState,
    Syy,
    Tila,
    evaluate,
    is_bundled_or_later,
)
from services.bundler.domain.jakso import (
    Hoks,
    Jakso,
    JaksoId,
    Opiskeluoikeus,
    TutkinnonOsa,
    is_present,
    normalize_ytunnus,
)
from shared.domain.dates import (
    DEFAULT_POLICIES,
    PolicySchedule,
    Tiedonkeruukausi,
    niputuspvm,
    tiedonkeruukausi,
)
from shared.domain.koodisto import without_version
from shared.domain.names import normalize_name


@dataclass(frozen=True, order=True)
class JatkumoKey:
    """J4: jaksot with equal keys may be one jatkumo (the HOKS is part of the key)."""

    hoks_id: int
    tutkinnon_osa: tuple[str, str, str]
    """(kind, koodi-uri or normalised name, osa-alue) — see `tutkinnon_osa_key`."""
    y_tunnus: str
    ohjaaja: str
    kausi: Tiedonkeruukausi


def tutkinnon_osa_key(osa: TutkinnonOsa) -> tuple[str, str, str] | None:
    """J4: the tutkinnon osa by koodi-uri without version, and osa-alue for yhteiset.

    A paikallinen tutkinnon osa has no koodi-uri: its normalised name (N4) stands in.
    None when the osa cannot be told apart (no koodi-uri or name, a yhteinen without
    osa-alue): such a jakso is surveyed on its own (J3).
    """
    if osa.koodi_uri is not None:
        tunnus = without_version(osa.koodi_uri)
    elif osa.kind == "paikallinen" and is_present(osa.nimi) and normalize_name(osa.nimi):
        tunnus = normalize_name(osa.nimi)
    else:
        return None
    if osa.kind != "yhteinen":
        return (osa.kind, tunnus, "")
    if osa.osa_alue_koodi_uri is None:
        return None
    return (osa.kind, tunnus, without_version(osa.osa_alue_koodi_uri))


def jatkumo_key(jakso: Jakso) -> JatkumoKey | None:
    """J4: the key of a jakso that can be part of a jatkumo, else None.

    None for a removed jakso (E14), one without `loppu` (its kausi is not known, so it
    holds no earlier jakso back), without y-tunnus or instructor name (E12), or whose
    tutkinnon osa is unknown.
    """
    osa = tutkinnon_osa_key(jakso.tutkinnon_osa)
    nimi, y_tunnus = jakso.ohjaaja.nimi, jakso.tyopaikan_ytunnus
    if (
        jakso.poistettu
        or jakso.loppu is None
        or osa is None
        or not is_present(nimi)
        or not is_present(y_tunnus)
    ):
        return None
    return JatkumoKey(
        hoks_id=jakso.hoks_id,
        tutkinnon_osa=osa,
        y_tunnus=normalize_ytunnus(y_tunnus),
        ohjaaja=normalize_name(nimi),
        kausi=tiedonkeruukausi(jakso.loppu),
    )


@dataclass(frozen=True)
class Jatkumo:
    """J4: the latest jakso and the earlier ones that are surveyed with it."""

    key: JatkumoKey
    latest: JaksoId
    earlier: tuple[JaksoId, ...]


def _order(jakso: Jakso) -> tuple[date, date, JaksoId]:
    assert jakso.loppu is not None  # only keyed jaksot are ordered
    return (jakso.loppu, jakso.alku, jakso.id)


def jatkumot(
    jaksot: Iterable[Jakso],
    own: Mapping[JaksoId, Eligibility],
    states: Mapping[JaksoId, JaksoState],
) -> tuple[Jatkumo, ...]:
    """J4, E18: the jatkumot among one HOKS's jaksot, sorted by key.

    `own` is each jakso's evaluation on its own, `states` the stored states. A jakso
    takes part when it is keyed, not bundled or later, and `odottaa` on its own, or
    `ei_laheteta` only because its own answer window closed (E13). The latest is the
    participant still `odottaa` with the latest `loppu` (then `alku`, then id); the
    earlier ones ended before it started. A key with no earlier jakso is no jatkumo.
    """
    groups: defaultdict[JatkumoKey, list[Jakso]] = defaultdict(list)
    for jakso in jaksot:
        key = jatkumo_key(jakso)
        state = states.get(jakso.id)
        if key is None or (state is not None and is_bundled_or_later(state)):
            continue
        result = own[jakso.id]
        if result.tila is Tila.ODOTTAA or result.rule == "E13":
            groups[key].append(jakso)
    found: list[Jatkumo] = []
    for key in sorted(groups):
        waiting = [j for j in groups[key] if own[j.id].tila is Tila.ODOTTAA]
        if not waiting:
            continue
        latest = max(waiting, key=_order)
        assert latest.loppu is not None
        earlier = sorted(j.id for j in groups[key] if j.loppu is not None and j.loppu < latest.alku)
        if earlier:
            found.append(Jatkumo(key, latest.id, tuple(earlier)))
    return tuple(found)


def evaluate_hoks(
    hoks: Hoks,
    jaksot: Sequence[Jakso],
    opiskeluoikeus: Opiskeluoikeus | None,
    today: date,
    states: Mapping[JaksoId, JaksoState] | None = None,
    policies: PolicySchedule = DEFAULT_POLICIES,
) -> dict[JaksoId, Eligibility]:
    """E1–E15 for every jakso of one HOKS, then J4.

    An earlier jakso of a jatkumo that is eligible against the latest's niputuspvm gets
    rule "J4": `odottaa_niputusta` with the latest's niputuspvm when the latest is
    eligible (E15), so both form one bundle (N1); else `jatkuu_myohemmin`. Any other
    jakso keeps its own evaluation. `states` are the stored states (E18); a deleted HOKS
    has no jatkumot (E14 decides every jakso).
    """
    by_id = {j.id: j for j in jaksot}
    own = {j.id: evaluate(j, hoks, opiskeluoikeus, today, policies) for j in jaksot}
    result = dict(own)
    if hoks.poistettu:
        return result
    for jatkumo in jatkumot(jaksot, own, states or {}):
        latest = own[jatkumo.latest]
        latest_loppu = by_id[jatkumo.latest].loppu
        assert latest_loppu is not None  # keyed jaksot have a loppu
        pvm = latest.niputuspvm or niputuspvm(latest_loppu, policies)
        syy = Syy.ODOTTAA_NIPUTUSTA if latest.rule == "E15" else Syy.JATKUU_MYOHEMMIN
        for jakso_id in jatkumo.earlier:
            joined = evaluate(
                by_id[jakso_id], hoks, opiskeluoikeus, today, policies, jatkumon_niputuspvm=pvm
            )
            if joined.rule == "E15":
                result[jakso_id] = Eligibility("J4", Tila.ODOTTAA, syy, pvm)
    return result
