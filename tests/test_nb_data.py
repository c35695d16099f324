"""Edge-case batteries moved out of the data chapters (01a_annotations, 01b_action_annotations): every bad value in an
annotation file is an `UnLocDataError` that names the file, the line or entry, and the field."""
import json
import re

import pytest

from unloc_nb.action_annotations import read_annotations, reader_arguments
from unloc_nb.annotations import UnLocDataError, _entry, _lines, _load_json, _number, _positive, _read_text, _text


def raises(call, message: str):
    "`call()` raises UnLocDataError whose text contains `message`; returns the error."
    with pytest.raises(UnLocDataError, match=re.escape(message)) as caught:
        call()
    return caught.value


def test_reader_arguments_are_checked_before_reading():
    raises(lambda: read_annotations("x.json", "anet"),
           "unknown annotation format 'anet'; valid formats: charades_sta, anet_captions")
    raises(lambda: read_annotations("x.txt", "charades_sta", csv="a.csv"), "the charades_sta reader has no argument 'csv'")
    raises(lambda: read_annotations("x.txt", "charades_sta", tol="0.1"), "reader argument tol should be a number >= 0")
    assert reader_arguments("charades_sta") == ["csv_path", "video_dir", "split", "tol", "drop_zero_length"]


def test_lines_and_entries_that_do_not_parse(tmp_path):
    p = tmp_path / "clips.txt"
    p.write_text("A 1.0 2.0##ok.\nB 1.0##no end here\n")
    raises(lambda: read_annotations(p, "charades_sta"), "clips.txt:2: cannot parse 'B 1.0##no end here'")
    p.write_text("A 1.0 2.O##typo in a number.\n")
    raises(lambda: read_annotations(p, "charades_sta"), "clips.txt:1: end: expected a number, got '2.O'")
    q = tmp_path / "val.jsonl"
    q.write_text('{"qid": 1, "query": "a", "duration": 150, "vid": "x_0.0_150.0"}\n{"qid": 2,\n')
    raises(lambda: read_annotations(q, "qvhighlights"), "val.jsonl:2: not valid JSON")
    j = tmp_path / "val_1.json"
    j.write_text('{"v_x": {"duration": 10, "timestamps": [[0, 1]]}}')
    error = raises(lambda: read_annotations(j, "anet_captions"),
                   "val_1.json: entry 'v_x': malformed entry (missing key 'sentences')")
    assert type(error.__cause__) is KeyError  # the cause is chained, not lost


def test_values_that_cannot_be_right(tmp_path):
    j = tmp_path / "val_1.json"
    j.write_text('{"v_x": {"duration": NaN, "timestamps": [[0, 1]], "sentences": ["a."]}}')
    raises(lambda: read_annotations(j, "anet_captions"), "entry 'v_x': duration: expected a finite number > 0, got nan")
    j.write_text('{"v_x": {"duration": 10, "timestamps": [[0, 1]], "sentences": [" "]}}')
    raises(lambda: read_annotations(j, "anet_captions"), "entry 'v_x': sentences[0]: expected a non-empty text")
    a = tmp_path / "activity_net.json"
    a.write_text('{"database": {"v": {"subset": "validation", "duration": 9, '
                 '"annotations": [{"segment": [1, 2], "label": 3}]}}}')
    raises(lambda: read_annotations(a, "activitynet"),
           "database entry 'v': annotations[0].label: expected a non-empty text, got 3")
    q = tmp_path / "val.jsonl"
    rec = {"qid": 1, "query": "a", "duration": 10, "vid": "x_0.0_10.0", "relevant_clip_ids": [5],
           "saliency_scores": [[1, 2, 3]]}
    q.write_text(json.dumps(rec))
    raises(lambda: read_annotations(q, "qvhighlights"),
           "val.jsonl:1: relevant_clip_ids[0] = 5 is not a 2 s clip of the 10 s video (0..4)")
    q.write_text(json.dumps({**rec, "relevant_clip_ids": [4]}) + "\n" + json.dumps({**rec, "relevant_clip_ids": [0]}))
    raises(lambda: read_annotations(q, "qvhighlights"), "val.jsonl:2: qid 1 was already used at")


def test_reader_helpers_name_the_file_line_and_field(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"v_x": {"duration": 10}, "v_x": {"duration": 12}}')
    raises(lambda: _load_json(p), "bad.json: key 'v_x' appears twice in one JSON object")
    raises(lambda: _read_text(tmp_path / "nope.txt"), "nope.txt: no such file")
    p.write_bytes("\ufeffAKKWU 1.0 2.0##a person.\n".encode())  # a byte-order mark, as some editors write
    assert _lines(p) == ["AKKWU 1.0 2.0##a person."]
    raises(lambda: _number("1,5", "f.txt:3"), "f.txt:3: expected a number, got '1,5'")
    raises(lambda: _positive(float("nan"), "f.json: entry 'v': duration"), "expected a finite number > 0, got nan")
    raises(lambda: _text("  ", "f.json: entry 'v': sentences[0]"), "sentences[0]: expected a non-empty text")

    def bad_entry():
        with _entry("f.json: entry 'v_x'"): {}["duration"]
    raises(bad_entry, "f.json: entry 'v_x': malformed entry (missing key 'duration')")
