import pytest

from metalearn_lite.exercises.beyond_maml import ZERO_HEAD_QUESTION, check_zero_head_anil


def test_zero_head_question(capsys):
    assert check_zero_head_anil("b") is True and "exactly ANIL's inner loop" in capsys.readouterr().out
    for wrong, diagnosis in (("a", "second order"), ("c", "batch-norm"), ("d", "prototype")):
        assert check_zero_head_anil(wrong) is False and diagnosis in capsys.readouterr().out
    assert check_zero_head_anil(None) is False and "Not answered yet" in capsys.readouterr().out
    with pytest.raises(ValueError, match='"a", "b", "c" or "d"'):
        check_zero_head_anil("e")
    assert set(ZERO_HEAD_QUESTION) == {"a", "b", "c", "d"}
