"""{{name}} natively, through the SDK's harness: `pytest`."""

from app import transform
from weir_operator import Harness


def test_every_record_comes_out_upper_cased_under_its_key():
    h = Harness(transform)
    h.push("k", b"hello").end_input()
    assert h.output_strings() == [("k", "HELLO")]
