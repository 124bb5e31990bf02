"""The allocator policy by process: the CLI keeps freed memory, the viewer's codec service gives
big blocks back (with huge pages), and what the user set always wins."""

from app.codec.engine.allocator import HUGE_PAGES_TUNABLE, MALLOC_POLICY_ENV, malloc_environment, malloc_policy


def test_policy_reads_the_environment_and_defaults_to_keep():
    assert malloc_policy({}) == "keep"
    assert malloc_policy({MALLOC_POLICY_ENV: " Release "}) == "release"
    assert malloc_policy({MALLOC_POLICY_ENV: "default"}) == "default"
    assert malloc_policy({MALLOC_POLICY_ENV: "nonsense"}) == "keep"


def test_release_for_a_child_adds_the_huge_page_tunable_to_the_users():
    assert malloc_environment("release", {}) == {MALLOC_POLICY_ENV: "release", "GLIBC_TUNABLES": HUGE_PAGES_TUNABLE}
    mine = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}
    assert malloc_environment("release", mine)["GLIBC_TUNABLES"] == f"glibc.malloc.tcache_count=0:{HUGE_PAGES_TUNABLE}"
    off = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    assert "GLIBC_TUNABLES" not in malloc_environment("release", off)  # the user's choice stays


def test_the_users_policy_wins_over_the_childs():
    assert malloc_environment("release", {MALLOC_POLICY_ENV: "keep"}) == {MALLOC_POLICY_ENV: "keep"}
    assert malloc_environment("release", {MALLOC_POLICY_ENV: "default"}) == {MALLOC_POLICY_ENV: "default"}


def test_the_service_starts_with_the_release_policy(monkeypatch):
    """The child's environment at spawn carries the policy; the viewer's own is left as it was."""
    import os

    from app.viewer import service_client

    seen = {}

    class FakeProcess:
        def start(self):
            seen.update({k: os.environ.get(k) for k in (MALLOC_POLICY_ENV, "GLIBC_TUNABLES")})

    monkeypatch.delenv(MALLOC_POLICY_ENV, raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    service_client._spawn(FakeProcess())
    assert seen == {MALLOC_POLICY_ENV: "release", "GLIBC_TUNABLES": HUGE_PAGES_TUNABLE}
    assert MALLOC_POLICY_ENV not in os.environ and "GLIBC_TUNABLES" not in os.environ
