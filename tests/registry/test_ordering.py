"""The rule every process applies to the audit log: what each requested move became, in the
order the server numbered the requests."""

from __future__ import annotations

from kit.registry.ordering import ANY, Request, replay


def promote(number: int, to: str, expected: str = ANY, attempt: str | None = None) -> Request:
    return Request(number, attempt or f"a{number}", "promote", to, expected)


def rollback(number: int, expected: str = ANY) -> Request:
    return Request(number, f"a{number}", "rollback", None, expected)


def moves(state) -> list[tuple]:
    return [(d.request.number, d.applied, d.from_version, d.to_version, d.refused) for d in state.decisions]


def test_from_versions_come_from_the_order_not_from_the_requests():
    state = replay([promote(3, "7"), promote(1, "5"), promote(2, "6")])  # read in any order
    assert moves(state) == [(1, True, None, "5", ""), (2, True, "5", "6", ""), (3, True, "6", "7", "")]
    assert state.holder == "7" and [d.seq for d in state.decisions] == [1, 2, 3]


def test_a_compare_and_set_that_lost_the_race_is_refused_by_every_reader():
    # two runs judged against v5; the server numbered v6's request first
    state = replay([promote(1, "5"), promote(2, "6", expected="5"), promote(3, "7", expected="5")])
    assert moves(state)[2] == (3, False, "6", "7", "held by v6, not v5 as expected")
    assert state.holder == "6"
    assert replay([promote(1, "6", expected="")]).holder == "6"  # "" expects no holder
    assert not replay([promote(1, "5"), promote(2, "6", expected="")]).decisions[1].applied


def test_rollbacks_pop_and_refuse_at_the_bottom():
    state = replay([promote(1, "1"), promote(2, "2"), rollback(3), rollback(4), promote(5, "3")])
    assert moves(state)[2:] == [(3, True, "2", "1", ""), (4, False, "1", None, "nothing to roll back to"),
                                (5, True, "1", "3", "")]
    assert [d.seq for d in state.decisions if d.applied] == [1, 2, 3, 4]


def test_promoting_the_holder_is_refused_and_a_resent_request_counts_once():
    state = replay([promote(1, "1"), promote(2, "1"), promote(3, "2", attempt="x"), promote(4, "2", attempt="x")])
    assert moves(state) == [(1, True, None, "1", ""), (2, False, "1", "1", "already v1"), (3, True, "1", "2", "")]


def test_former_holders_tell_a_lagging_alias_from_one_moved_outside_kit():
    state = replay([promote(1, "1"), promote(2, "2"), rollback(3)], stack=["9"])  # v9 from a legacy log
    assert state.former == {None, "9", "1", "2"} and state.holder == "1"
    assert moves(state)[0][2] == "9"
