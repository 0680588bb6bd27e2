"""Pair network strategies and perpendicular baselines from the records' state vectors."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest

from dinsar.config import Pairs
from dinsar.inventory import Acquisition, group_acquisitions
from dinsar.pairs import (
    Baselines,
    Pair,
    PairError,
    build_network,
    connected_components,
    date_baselines,
    days_between,
    network_for_tracks,
    network_parts,
    timeseries_eligibility,
)
from fixture_scenes import scenes, stack_records


@pytest.fixture(scope="module")
def acquisitions(shared_dir: Path) -> list[Acquisition]:
    acqs = group_acquisitions(scenes(shared_dir))
    for acq in acqs:
        acq.used = True
    return acqs


def first_n(acqs: list[Acquisition], n: int) -> list[Acquisition]:
    return sorted(acqs, key=lambda a: a.date)[:n]


def ids(pairs) -> list[str]:
    return [p.id for p in pairs]


def test_sequential_pairs_each_date_with_its_next_n(acquisitions: list[Acquisition]) -> None:
    acqs = first_n(acquisitions, 10)
    dates = [a.date for a in acqs]
    for n in (1, 2, 3):
        pairs = build_network(dates, Baselines(acqs), Pairs(sequential=n), "13_DESC")
        expected = {
            (dates[i], dates[j]) for i in range(10) for j in range(i + 1, min(10, i + 1 + n))
        }
        assert {(p.reference, p.secondary) for p in pairs} == expected
        assert len(pairs) == sum(min(n, 9 - i) for i in range(10))
        for pair in pairs:
            assert pair.reference < pair.secondary
            assert pair.id == f"{pair.reference}_{pair.secondary}"
            assert pair.btemp_days == days_between(pair.reference, pair.secondary) > 0


def test_temporal_limit_filters_and_zero_sequential_means_all_within_limits(
    acquisitions: list[Acquisition],
) -> None:
    acqs = first_n(acquisitions, 12)
    dates = [a.date for a in acqs]
    base = Baselines(acqs)
    limited = build_network(dates, base, Pairs(sequential=3, max_temporal_baseline=30), "t")
    assert limited and all(p.btemp_days <= 30 for p in limited)
    allowed = build_network(dates, base, Pairs(sequential=0, max_temporal_baseline=50), "t")
    expected = {(a, b) for a, b in itertools.combinations(dates, 2) if days_between(a, b) <= 50}
    assert {(p.reference, p.secondary) for p in allowed} == expected


def test_single_reference_star_and_explicit_pairs(acquisitions: list[Acquisition]) -> None:
    acqs = first_n(acquisitions, 6)
    dates = [a.date for a in acqs]
    star = build_network(dates, Baselines(acqs), Pairs(single_reference=dates[2]), "t")
    assert len(star) == 5
    assert all(dates[2] in (p.reference, p.secondary) for p in star)
    assert all(p.reference < p.secondary for p in star)  # the earlier date always comes first
    extra = f"{dates[0]}_{dates[5]}"
    with_extra = build_network(
        dates, Baselines(acqs), Pairs(sequential=1, explicit=(extra,)), "t"
    )
    assert extra in ids(with_extra) and len(with_extra) == 6
    only_explicit = build_network(
        dates, Baselines(acqs), Pairs(sequential=0, explicit=(extra,)), "t"
    )
    assert ids(only_explicit) == [extra]


def test_bad_pair_settings_give_clear_errors(acquisitions: list[Acquisition]) -> None:
    acqs = first_n(acquisitions, 4)
    dates = [a.date for a in acqs]
    with pytest.raises(
        PairError, match=r"pairs.explicit 20000101_20000113: date\(s\) 20000101, 20000113"
    ):
        build_network(dates, Baselines(acqs), Pairs(explicit=("20000101_20000113",)), "t")
    with pytest.raises(PairError, match="pairs.single_reference 20000101 is not a usable date"):
        build_network(dates, Baselines(acqs), Pairs(single_reference="20000101"), "t")
    with pytest.raises(PairError, match="leave no pair on track 13_DESC"):
        network_for_tracks(acqs, Pairs(sequential=1, max_temporal_baseline=1))
    with pytest.raises(PairError, match="has 1 usable date"):
        network_for_tracks(acqs[:1], Pairs())


def test_perpendicular_baseline_matches_asf_published_values(
    acquisitions: list[Acquisition], shared_dir: Path
) -> None:
    """The records carry ASF's own Bperp relative to S1A 2016-05-28; we must reproduce them."""
    published = {
        r["properties"]["sceneName"]: r["properties"]["perpendicularBaseline"]
        for r in stack_records(shared_dir)
    }
    single = [a for a in acquisitions if len(a.scenes) == 1]
    reference = next(a for a in single if a.date == "20160528")
    baselines = Baselines([reference] + [a for a in single if a.date != "20160528"])
    checked = 0
    for acq in single:
        if acq.date == reference.date:
            continue
        computed = (
            baselines.pair(reference.date, acq.date)
            if acq.date > reference.date
            else -baselines.pair(acq.date, reference.date)
        )
        expected = published[acq.scenes[0].granule]
        # ASF publishes whole metres; swapping the reference flips the sign to within a metre
        tolerance = 0.51 if acq.date > reference.date else 3.0
        assert computed == pytest.approx(expected, abs=tolerance), acq.date
        checked += 1
    assert checked > 150
    assert max(abs(v) for v in published.values()) > 100  # a real, non-trivial spread


def test_perpendicular_limit_uses_pair_baselines(acquisitions: list[Acquisition]) -> None:
    acqs = first_n(acquisitions, 15)
    dates = [a.date for a in acqs]
    base = Baselines(acqs)
    pairs = build_network(
        dates, base, Pairs(sequential=0, max_perpendicular_baseline=40), "t"
    )
    every = {(a, b): base.pair(a, b) for a, b in itertools.combinations(dates, 2)}
    assert {(p.reference, p.secondary) for p in pairs} == {
        k for k, v in every.items() if abs(v) <= 40
    }
    assert 0 < len(pairs) < len(every)


def test_perpendicular_limit_without_state_vectors_is_refused(
    acquisitions: list[Acquisition],
) -> None:
    bare = [
        dataclasses.replace(a, scenes=[dataclasses.replace(s, baseline=None) for s in a.scenes])
        for a in first_n(acquisitions, 4)
    ]
    assert all(math.isnan(v) for d, v in date_baselines(bare).items() if d != bare[0].date)
    with pytest.raises(PairError, match="no orbit state\\s+vectors"):
        build_network(
            [a.date for a in bare],
            Baselines(bare),
            Pairs(max_perpendicular_baseline=100),
            "t",
        )


def test_pair_id_collision_across_tracks_is_refused(acquisitions: list[Acquisition]) -> None:
    acqs = first_n(acquisitions, 3)
    other = [
        dataclasses.replace(
            a,
            track="42_ASC",
            scenes=[
                dataclasses.replace(s, path=42, flight_direction="ASCENDING") for s in a.scenes
            ],
        )
        for a in acqs
    ]
    with pytest.raises(PairError, match="exists on tracks 13_DESC and 42_ASC"):
        network_for_tracks(acqs + other, Pairs())


def test_connected_components_counts_subnetworks(acquisitions: list[Acquisition]) -> None:
    acqs = first_n(acquisitions, 6)
    dates = [a.date for a in acqs]
    pairs = build_network(dates, Baselines(acqs), Pairs(sequential=1), "t")
    assert connected_components(pairs, dates) == 1
    assert connected_components(pairs[:2] + pairs[3:], dates) == 2


# a 12-day revisit; pairs of the one track "t", Bperp irrelevant to connectivity
TWELVE_DAY_DATES = ["20250601", "20250613", "20250625", "20250707", "20250719", "20250731"]


def pairs_of(*links: tuple[int, int]) -> list[Pair]:
    dates = TWELVE_DAY_DATES
    return [
        Pair("t", dates[i], dates[j], days_between(dates[i], dates[j]), math.nan)
        for i, j in links
    ]


def test_connected_network_is_eligible_for_the_time_series() -> None:
    pairs = pairs_of((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 2))
    split = network_parts(TWELVE_DAY_DATES, pairs)
    assert split.connected and split.parts == [TWELVE_DAY_DATES] and split.gaps == []
    assert timeseries_eligibility(TWELVE_DAY_DATES, pairs) == (
        True, "6 dates, 6 pairs, connected"
    )  # fmt: skip


def test_one_gap_is_named_by_the_dates_it_lies_between_with_the_fix() -> None:
    pairs = pairs_of((0, 1), (2, 3), (3, 4), (4, 5), (2, 4))
    split = network_parts(TWELVE_DAY_DATES, pairs)
    assert split.parts == [TWELVE_DAY_DATES[:2], TWELVE_DAY_DATES[2:]]
    assert split.gaps == [("20250613", "20250625")] and not split.interleaved
    ok, reason = timeseries_eligibility(TWELVE_DAY_DATES, pairs)
    assert not ok
    assert reason.startswith("no pair links 20250613 to 20250625: widen "
                             "pairs.max_temporal_baseline")  # fmt: skip
    assert "pairs.explicit: [20250613_20250625]" in reason


def test_two_gaps_and_a_date_in_no_pair_are_each_named() -> None:
    # 20250601 is in no pair: a part of its own, so the first gap ends at the next date
    pairs = pairs_of((1, 2), (3, 4), (4, 5))
    split = network_parts(TWELVE_DAY_DATES, pairs)
    assert split.parts == [["20250601"], ["20250613", "20250625"], TWELVE_DAY_DATES[3:]]
    assert split.gaps == [("20250601", "20250613"), ("20250625", "20250707")]
    ok, reason = timeseries_eligibility(TWELVE_DAY_DATES, pairs)
    assert not ok
    assert "no pair links 20250601 to 20250613, nor 20250625 to 20250707:" in reason
    assert "pairs.explicit: [20250601_20250613, 20250625_20250707]" in reason


def test_interleaved_parts_are_named_by_their_dates() -> None:
    # a 24-day sequential network on a 12-day revisit: odd and even dates never meet
    pairs = pairs_of((0, 2), (2, 4), (1, 3), (3, 5))
    split = network_parts(TWELVE_DAY_DATES, pairs)
    assert split.interleaved and split.gaps == []
    ok, reason = timeseries_eligibility(TWELVE_DAY_DATES, pairs)
    assert not ok
    assert ("2 parts that interleave in time, [20250601, 20250625, 20250719]; "
            "[20250613, 20250707, 20250731]") in reason  # fmt: skip


def test_fewer_than_three_dates_is_not_eligible() -> None:
    ok, reason = timeseries_eligibility(TWELVE_DAY_DATES[:2], pairs_of((0, 1)))
    assert not ok
    assert reason.startswith("2 date(s) in the network; a time series needs at least 3")
    assert "dates.start/dates.end" in reason
