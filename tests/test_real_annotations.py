"""Every file of ../shared/real_annotations parsed with counted quirks.

The folder holds byte-exact excerpts of the public annotation files and is not shipped with the repository; the
tests are skipped when ../shared/real_annotations (next to the repository) is absent.
"""
import json
from pathlib import Path

import pytest

from unloc_nb.data import UnLocDataError, UnLocDataWarning, read_annotations, read_with_quirks

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real_annotations"
pytestmark = [pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_annotations is not present"),
              pytest.mark.filterwarnings("ignore::unloc_nb.data.UnLocDataWarning")]


def by_id(anns):
    return {a.video_id: a for a in anns}


def n_segments(anns):
    return sum(len(a.segments) for a in anns)


# ---------------------------------------------------------------- Charades-STA
def test_charades_test_first150_with_csv():
    anns, quirks = read_with_quirks(REAL / "charades_sta/charades_sta_test.first150.txt", "charades_sta",
                                    csv_path=REAL / "charades_sta/Charades_v1_test.rows_for_first150.csv")
    assert len(anns) == 57 and n_segments(anns) == 150  # README: first 150 lines, 57 videos
    assert {a.split for a in anns} == {"test"}
    assert quirks == {"clipped": 18}  # README: 18 of the first 150 lines end after `length`
    assert all(a.duration is not None and all(0 <= s <= e <= a.duration for s, e, _ in a.segments) for a in anns)
    assert by_id(anns)["YSKX3"].duration == 16.62  # `length` from the csv


def test_charades_test_first150_without_durations():
    anns, quirks = read_with_quirks(REAL / "charades_sta/charades_sta_test.first150.txt", "charades_sta")
    assert quirks == {"no_duration": 57} and all(a.duration is None for a in anns) and n_segments(anns) == 150
    # paraphrases of one moment stay separate segments, in file order
    assert by_id(anns)["3MSZA"].segments[:2] == [(24.3, 30.4, "person turn a light on."),
                                                (24.3, 30.4, "person flipped the light switch near the door.")]


def test_charades_train_quirks():
    anns, quirks = read_with_quirks(REAL / "charades_sta/charades_sta_train.quirks.txt", "charades_sta",
                                    csv_path=REAL / "charades_sta/Charades_v1_train.rows_for_quirks.csv")
    # 10 lines, 8 videos; 4 start>end swapped; LEOL6 (length 6.25) and AKKWU x2 (12.17) then start after the end
    assert len(anns) == 8 and quirks == {"swapped": 4, "outside": 3, "whitespace": 2}
    ann = by_id(anns)
    assert ann["LEOL6"].segments == [] and ann["AKKWU"].segments == []
    assert ann["IOL8Q"].segments == [(12.0, 20.9, "a person is throwing a bag out of the room.")]  # swapped, kept
    assert ann["0G2SC"].segments[0][2] == "person #1 smiled as person #2 walked through the doorway."  # '#' kept
    assert ann["BOKLM"].segments[0][2] == "person sits to put on shoes."  # double spaces collapsed
    assert ann["DRPO3"].segments[0][2] == "person picks up bottle of water & drinks."
    assert ann["MMRRV"].segments == [(0.0, 3.18, "person turn off the light."), (0.0, 3.18, "person turning off the light.")]
    assert ann["LEOL6"].duration == 6.25 and ann["AKKWU"].duration == 12.17


def test_charades_train_quirks_without_csv_keeps_swapped_segments():
    anns, quirks = read_with_quirks(REAL / "charades_sta/charades_sta_train.quirks.txt", "charades_sta")
    assert quirks == {"swapped": 4, "whitespace": 2, "no_duration": 8} and n_segments(anns) == 10
    assert by_id(anns)["AKKWU"].segments[0][:2] == (13.0, 38.0)


def test_charades_warning_names_file_and_count():
    with pytest.warns(UnLocDataWarning, match=r"charades_sta_train\.quirks\.txt: swapped start>end in 4 segments"):
        read_annotations(REAL / "charades_sta/charades_sta_train.quirks.txt", "charades_sta")


# ---------------------------------------------------------------- ActivityNet Captions
def test_anet_captions_val_first40():
    path = REAL / "activitynet_captions/val_1.first40.json"
    anns, quirks = read_with_quirks(path, "anet_captions")
    raw = json.loads(path.read_text())
    assert len(anns) == 40 and n_segments(anns) == 139 == sum(len(v["sentences"]) for v in raw.values())
    assert quirks == {"whitespace": 93, "unsorted": 1}
    assert {a.split for a in anns} == {"val"}
    for a in anns:
        assert a.extra["youtube_id"] == a.video_id[2:] and a.video_id.startswith("v_")
        assert all(t == " ".join(t.split()) and t.endswith(".") for *_, t in a.segments)  # stripped, normalised
        assert [s[:2] for s in a.segments] == sorted(s[:2] for s in a.segments)


def test_anet_captions_val_quirks():
    anns, quirks = read_with_quirks(REAL / "activitynet_captions/val_1.quirks.json", "anet_captions")
    assert len(anns) == 11 and n_segments(anns) == 66
    # v_EGLJPCJnG64 and v_-sd2XAFkeC0 overshoot by 0.01 s; v_qI1ZayfiGHI's 95.04 vs 95.03999999999999 is float noise
    assert quirks == {"whitespace": 49, "unsorted": 3, "clipped": 2, "clipped_float": 1}
    ann = by_id(anns)
    assert ann["v_EGLJPCJnG64"].segments[-1][:2] == (29.61, 89.71000000000001)
    assert ann["v_qI1ZayfiGHI"].segments[-1][1] == 95.03999999999999
    assert ann["v_-sd2XAFkeC0"].extra["youtube_id"] == "-sd2XAFkeC0"
    assert ann["v__KOVk8iGbrA"].extra["youtube_id"] == "_KOVk8iGbrA"
    # newline at the start (v_BtrGC6PUPJk) and in the middle (v_Kkkrap77n5M) of a sentence
    assert all("\n" not in t and not t.startswith(" ") for a in anns for *_, t in a.segments)
    assert ann["v_BtrGC6PUPJk"].segments[2][2].startswith("Two other group mem")
    assert any("  " not in t for *_, t in ann["v_Kkkrap77n5M"].segments)
    # unsorted timestamps are sorted, sentences travel with their times
    d0 = ann["v_D0pVkTEYQg8"]
    assert [s[:2] for s in d0.segments] == [(4.17, 14.24), (4.39, 21.41), (14.34, 15.95)]
    assert d0.segments[1][2].startswith("A guy exercises on a") and d0.extra["sentence_index"] == [1, 0, 2]
    assert all(isinstance(x, float) for a in anns for s in a.segments for x in s[:2])  # ints read as floats


def test_anet_captions_train_quirks():
    anns, quirks = read_with_quirks(REAL / "activitynet_captions/train.quirks.json", "anet_captions")
    assert len(anns) == 5 and n_segments(anns) == 29 and {a.split for a in anns} == {"train"}
    assert quirks == {"whitespace": 24, "swapped": 2, "zero_kept": 2, "clipped": 2, "unsorted": 1}
    ann = by_id(anns)
    assert (60.71, 61.29) in [s[:2] for s in ann["v_0bosp4-pyTM"].segments]
    assert (150.31, 173.44) in [s[:2] for s in ann["v_rhOtqArO-3Y"].segments]
    assert (34.77, 34.77) in [s[:2] for s in ann["v_N7ppHQNikv8"].segments]
    assert ann["v_pSdlIsd_vZc"].segments[0][:2] == (0.0, 43.41)  # 43.42 clipped to the duration


def test_anet_captions_drop_zero_length():
    anns, quirks = read_with_quirks(REAL / "activitynet_captions/train.quirks.json", "anet_captions", drop_zero_length=True)
    assert quirks["zero_dropped"] == 2 and "zero_kept" not in quirks and n_segments(anns) == 27


# ---------------------------------------------------------------- QVHighlights
def test_qvhighlights_first40():
    anns, quirks = read_with_quirks(REAL / "qvhighlights/highlight_val_release.first40.jsonl", "qvhighlights")
    assert len(anns) == 40 and n_segments(anns) == 59 and {a.split for a in anns} == {"val"}
    assert quirks == {"vid_span": 1}
    ann = by_id(anns)["bP5KfdFJzC4_660.0_810.0"]
    assert ann.duration == 126.0  # the record's duration, not the 150 s vid span
    assert (ann.extra["youtube_id"], ann.extra["clip_start"], ann.extra["clip_end"]) == ("bP5KfdFJzC4", 660.0, 810.0)
    for a in anns:
        assert len(a.saliency) > 0 and all(len(sc) == 3 and all(0 <= s <= 4 for s in sc) for _, sc in a.saliency)
        assert all(s[2] == a.extra["query"] for s in a.segments)


def test_qvhighlights_quirks():
    anns, quirks = read_with_quirks(REAL / "qvhighlights/highlight_val_release.quirks.jsonl", "qvhighlights")
    assert len(anns) == 5 and n_segments(anns) == 7  # last record has no trailing newline and is read
    assert quirks == {"vid_span": 3, "whitespace": 2}
    ann = by_id(anns)
    assert ann["-_s0sXOfS3w_210.0_360.0"].extra["youtube_id"] == "-_s0sXOfS3w"  # leading '-' then '_'
    assert ann["_e8_yuedv6w_660.0_810.0"].extra["youtube_id"] == "_e8_yuedv6w"
    assert ann["_e8_yuedv6w_660.0_810.0"].duration == 144.0
    assert ann["izeyQalOwGg_210.0_360.0"].duration == 128.0
    two = [a for a in anns if [s[:2] for s in a.segments] == [(0.0, 104.0), (106.0, 130.0)]]
    assert len(two) == 1 and two[0].extra["query"] == "A massage about mantel health"  # double space collapsed, typo kept
    assert any("café" in a.extra["query"] for a in anns)  # \u00e9 escape decoded
    first = ann["-_s0sXOfS3w_210.0_360.0"]
    assert first.saliency[0] == (0, (4, 3, 3)) and len(first.saliency) == 14 and first.segments == [(0.0, 28.0, first.extra["query"])]


# ---------------------------------------------------------------- ActivityNet 1.3
def test_activitynet13_results_first40():
    anns, quirks = read_with_quirks(REAL / "activitynet13/sample_detection_prediction.first40.json", "activitynet", split="val")
    assert len(anns) == 40 and n_segments(anns) == 62 and quirks == {}
    assert {a.split for a in anns} == {"val"} and all(a.duration is None for a in anns)
    assert len({t for a in anns for *_, t in a.segments}) == 37
    ann = by_id(anns)
    assert ann["FWbCX1wBVoE"].segments == [(81.01264898595943, 108.36756942277692, "Mooping floor")]  # typo verbatim
    assert all(sc == [1.0] * len(a.segments) for a in anns for sc in [a.extra["scores"]])
    assert "W_hux-Z6Ll0" in ann and ann["W_hux-Z6Ll0"].segments == [(0.01, 0.02, "Skiing")]


def test_activitynet13_zero_length_rule():
    path = REAL / "activitynet13/sample_detection_prediction.quirks.json"
    anns, quirks = read_with_quirks(path, "activitynet")
    assert len(anns) == 4 and n_segments(anns) == 5 and quirks == {"zero_kept": 3}
    ann = by_id(anns)
    assert ann["QhiKgeJV3k0"].segments[0] == (4.10395084399376, 4.10395084399376, "Playing guitarra")
    assert ann["6kgJx6ahgq0"].segments == [(0.0, 0.0, "Playing kickball")]
    anns, quirks = read_with_quirks(path, "activitynet", drop_zero_length=True)
    assert quirks == {"zero_dropped": 3} and n_segments(anns) == 2 and by_id(anns)["e6J_ygZ779A"].segments == []
    assert read_annotations(path, "activitynet", subset="train", split="val") == []


# ---------------------------------------------------------------- THUMOS14
def test_thumos14_json_first20():
    anns, quirks = read_with_quirks(REAL / "thumos14/thumos14_actionformer.first20.json", "thumos14_json")
    assert len(anns) == 20 and n_segments(anns) == 212 and {a.split for a in anns} == {"test"}  # 'Test' lower-cased
    assert quirks == {"unsorted": 5, "shared_times": 19}  # grouped by label; CliffDiving/Diving pairs kept
    assert anns[0].video_id == "video_test_0000004" and anns[0].segments[0] == (0.2, 1.1, "CricketBowling")
    assert all(a.fps == 30.0 for a in anns)
    for a in anns: assert [s[:2] for s in a.segments] == sorted(s[:2] for s in a.segments)


def test_thumos14_json_quirks():
    anns, quirks = read_with_quirks(REAL / "thumos14/thumos14_actionformer.quirks.json", "thumos14_json")
    assert len(anns) == 8 and {a.split for a in anns} == {"test", "val"}
    # 27 annotations end after the video (22 in 0000270, 2 + 2 in val 364/856, 1 in 1081) and all start after it too
    assert quirks == {"outside": 27, "unsorted": 4, "shared_times": 12} and n_segments(anns) == 188 - 27
    ann = by_id(anns)
    assert (ann["video_test_0000273"].fps, ann["video_test_0000950"].fps, ann["video_test_0001207"].fps) == (29.97, 25.0, 24.0)
    cliff = {s[:2] for s in ann["video_test_0000131"].segments if s[2] == "CliffDiving"}
    diving = {s[:2] for s in ann["video_test_0000131"].segments if s[2] == "Diving"}
    assert cliff and cliff <= diving  # every CliffDiving is also a Diving: both kept
    assert ann["video_validation_0000364"].duration == 112.64
    assert all(e <= a.duration for a in anns for _, e, _ in a.segments)
    assert len(read_annotations(REAL / "thumos14/thumos14_actionformer.quirks.json", "thumos14_json", subset="Validation")) == 2


def test_thumos14_txt_val():
    anns, quirks = read_with_quirks(REAL / "thumos14/original_txt/annotations_val", "thumos14_txt")
    # 30 + 143 + 499 + 271 + 66 class rows; 89 Ambiguous rows set apart; 5 of 6 files unsorted
    assert n_segments(anns) == 1009 and len(anns) == 51 and {a.split for a in anns} == {"val"}
    assert quirks == {"ambiguous": 89, "unsorted_rows": 5, "only_ambiguous": 19, "shared_times": 143}
    with_amb, _ = read_with_quirks(REAL / "thumos14/original_txt/annotations_val", "thumos14_txt", include_ambiguous=True)
    assert sum(t == "Ambiguous" for a in with_amb for *_, t in a.segments) == 89 and len(with_amb) == 51 + 19
    kept_apart = sum(len(a.extra["ambiguous"]) for a in anns)  # Ambiguous rows of the 51 videos with class rows
    assert kept_apart == sum(t == "Ambiguous" for a in with_amb if a.video_id in by_id(anns) for *_, t in a.segments) == 59
    labels = {t for a in anns for *_, t in a.segments}
    assert labels == {"BaseballPitch", "CliffDiving", "Diving", "HighJump", "SoccerPenalty"}
    assert by_id(anns)["video_validation_0000361"].segments[0] == (74.6, 78.6, "HighJump")


def test_thumos14_txt_test_ambiguous_only_video():
    path = REAL / "thumos14/original_txt/annotations_test"
    anns, quirks = read_with_quirks(path, "thumos14_txt")
    assert n_segments(anns) == 41 + 242 and len(anns) == 21
    assert quirks == {"ambiguous": 99, "unsorted_rows": 1, "only_ambiguous": 35}
    assert "video_test_0001292" not in by_id(anns)  # only in Ambiguous_test.txt: dropped like ActionFormer
    anns, quirks = read_with_quirks(path, "thumos14_txt", include_ambiguous=True)
    assert "ambiguous" not in quirks and n_segments(anns) == 41 + 242 + 99
    assert {t for *_, t in by_id(anns)["video_test_0001292"].segments} == {"Ambiguous"}
    assert len(by_id(anns)["video_test_0001292"].segments) == 3


def test_thumos14_txt_rows_past_video_end_with_json_durations():
    durations = {a.video_id: a.duration for a in read_annotations(REAL / "thumos14/thumos14_actionformer.quirks.json", "thumos14_json")}
    anns, quirks = read_with_quirks(REAL / "thumos14/original_txt", "thumos14_txt", durations=durations)
    # README: 4 val rows past the end (HighJump 0000364 x2 vs 112.64 s, SoccerPenalty 0000856 x2 vs 83.15 s) and,
    # in the test folder, 22 HammerThrow rows of video_test_0000270 (176.25 s); all of them start after the end
    assert {a.split for a in anns} == {"val", "test"} and len(anns) == 72
    assert quirks == {"outside": 4 + 22, "ambiguous": 89 + 99, "unsorted_rows": 6, "only_ambiguous": 19 + 35, "shared_times": 143}
    ann = by_id(anns)
    assert (len(ann["video_validation_0000364"].segments), len(ann["video_test_0000270"].segments)) == (6, 7)
    assert all(e <= a.duration for a in anns if a.duration is not None for _, e, _ in a.segments)
    assert ann["video_validation_0000361"].duration is None  # no duration given for it


# ---------------------------------------------------------------- bad input
def test_bad_input(tmp_path):
    with pytest.raises(UnLocDataError, match="unknown annotation format 'coin_json'.*valid formats: charades_sta"):
        read_annotations(REAL / "thumos14/thumos14_actionformer.first20.json", "coin_json")
    with pytest.raises(UnLocDataError, match="no such file"):
        read_annotations(tmp_path / "nope.json", "activitynet")
    broken = tmp_path / "val_1.json"
    broken.write_bytes((REAL / "activitynet_captions/val_1.first40.json").read_bytes()[:5000])
    with pytest.raises(UnLocDataError, match=r"val_1\.json:1:\d+: not valid JSON"):
        read_annotations(broken, "anet_captions")
    with pytest.raises(UnLocDataError, match="expected a JSON object with 'database'"):
        read_annotations(REAL / "activitynet_captions/val_1.first40.json", "activitynet")
    bad_txt = tmp_path / "annotations"; bad_txt.mkdir()
    (bad_txt / "HighJump_val.txt").write_text("video_validation_0000361  74.6 78.6\nvideo_validation_0000361  101.9\n")
    with pytest.raises(UnLocDataError, match=r"HighJump_val\.txt:2: cannot parse"):
        read_annotations(bad_txt, "thumos14_txt")
