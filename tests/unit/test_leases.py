"""The lease rule both build ledgers apply: done, busy under another attempt's lease, or free to take."""

from datetime import UTC, datetime, timedelta

from shared.domain.leases import claim_decision, claimed_record, may_renew

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def running(attempt: str, until: datetime) -> dict:
    return {"status": "building", "attempt": attempt, "lease_until": until, "takeovers": 0}


def test_a_new_build_is_taken() -> None:
    assert claim_decision(None, "a", NOW) == "take"
    assert claimed_record(None, "b1", "a", NOW, LEASE) == {
        "build_id": "b1", "status": "building", "attempt": "a", "lease_until": NOW + LEASE, "started_at": NOW,
        "takeovers": 0,
    }


def test_a_finished_or_rejected_build_is_done_for_any_attempt() -> None:
    for status in ("finished", "rejected"):
        assert claim_decision({"status": status, "attempt": "a", "lease_until": NOW + LEASE}, "b", NOW) == "done"


def test_another_attempts_running_lease_makes_it_busy_until_it_lapses() -> None:
    record = running("a", NOW + LEASE)
    assert claim_decision(record, "b", NOW) == "busy"
    assert claim_decision(record, "b", NOW + LEASE) == "take"  # lapsed exactly at lease_until
    assert claimed_record(record, "b1", "b", NOW + LEASE, LEASE)["takeovers"] == 1


def test_the_holder_may_claim_again_and_renew_only_its_own_running_build() -> None:
    record = running("a", NOW + LEASE)
    assert claim_decision(record, "a", NOW) == "take"
    assert may_renew(record, "a")
    assert not may_renew(record, "b")
    assert not may_renew({**record, "status": "finished"}, "a")
    assert not may_renew(None, "a")
