"""The backfill's group runs with the cyclic collector paused and leaves it as it found it."""

import gc

from spark_jobs.gcpause import cycle_collection_paused


def test_the_collector_is_off_inside_and_restored_after_even_on_error():
    assert gc.isenabled()
    try:
        with cycle_collection_paused():
            assert not gc.isenabled()
            with cycle_collection_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner block leaves the outer one's pause alone
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.isenabled()


def test_a_process_that_had_it_off_keeps_it_off():
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
