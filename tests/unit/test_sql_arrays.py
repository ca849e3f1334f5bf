import pytest

from indexing.core.sql_arrays import int_array


def test_integer_keys_become_one_array_literal():
    assert int_array([3, "12", -7]) == "{3,12,-7}"
    assert int_array([]) == "{}"


def test_anything_but_an_integer_is_refused_not_quoted_into_the_literal():
    with pytest.raises(ValueError):
        int_array([1, "2}; DROP TABLE x; --"])
    with pytest.raises(ValueError):
        int_array(["1,2"])
