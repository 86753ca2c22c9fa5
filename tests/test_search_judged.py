"""The judged search set loads, is consistent, and its metrics are right
(hand-computed cases); bench/bench_quality.py prints the scores."""

from __future__ import annotations

import math

import pytest

from tests.judged import Answer, Question, Scores, Setting, chapter_found, choose_chapter_threshold, choose_setting, dcg, hit_at_1, load_catalogue, load_questions, ndcg, score


def test_the_judged_set_loads_and_every_grade_names_a_real_episode() -> None:
    episodes = {e.id: e for e in load_catalogue()}
    questions = load_questions()
    assert len(episodes) >= 100
    # realistic show notes: long, with the course/link footer the real feed carries
    sizes = sorted(len(e.item.summary.encode()) for e in episodes.values())
    assert sizes[len(sizes) // 2] >= 2000
    kinds = {q.kind for q in questions}
    assert kinds == {"answer", "noise", "chapter"}
    assert sum(q.kind == "noise" for q in questions) >= 10
    assert sum(q.kind == "chapter" for q in questions) >= 10
    for q in questions:
        assert all(e in episodes and 1 <= g <= 3 for e, g in q.grades.items()), q
        assert bool(q.grades) == (q.kind != "noise"), q
        if q.chapter is not None:
            episode, title = q.chapter
            assert title in [c.title for c in episodes[episode].item.chapters], q
    assert len({q.text for q in questions}) == len(questions)


def test_dcg_uses_exponential_gain_and_a_log2_discount() -> None:
    assert dcg([3]) == 7.0
    assert dcg([3, 1]) == pytest.approx(7 + 1 / math.log2(3))
    assert dcg([0, 0, 0, 0, 0, 3]) == 0.0  # below the depth


def test_ndcg_on_hand_computed_cases() -> None:
    grades = {"a": 3, "b": 1}
    ideal = 7 + 1 / math.log2(3)  # 7.6309
    assert ndcg(["a", "b"], grades) == pytest.approx(1.0)
    assert ndcg(["b", "a"], grades) == pytest.approx((1 + 7 / math.log2(3)) / ideal)  # 0.7098
    assert ndcg(["b", "a"], grades) == pytest.approx(0.7098, abs=1e-4)
    assert ndcg(["x", "a"], {"a": 3}) == pytest.approx(1 / math.log2(3))  # 0.6309
    assert ndcg([], grades) == 0.0
    assert ndcg(["x", "y", "z", "w", "v", "a"], {"a": 3}) == 0.0
    assert ndcg(["a"], {}) == 0.0


def test_hit_at_1_needs_a_substantially_relevant_first_result() -> None:
    assert hit_at_1(["a"], {"a": 2})
    assert not hit_at_1(["a"], {"a": 1})
    assert not hit_at_1([], {"a": 3})


def test_chapter_found_needs_the_episode_on_the_page_and_the_chapter_first() -> None:
    target = ("e1", "Vacuum")
    assert chapter_found(Answer(("e1",), {"e1": ("Vacuum", "Intro")}), target)
    assert not chapter_found(Answer(("e1",), {"e1": ("Intro", "Vacuum")}), target)
    assert not chapter_found(Answer(("e2",), {"e2": ("Vacuum",)}), target)
    assert not chapter_found(Answer(tuple(f"x{i}" for i in range(5)) + ("e1",), {"e1": ("Vacuum",)}), target)


def test_score_splits_questions_by_kind() -> None:
    qs = [Question("a", "answer", {"e1": 3}), Question("n", "noise", {}), Question("m", "noise", {}),
          Question("c", "chapter", {"e2": 3}, ("e2", "Intro"))]
    answers = [Answer(("e1",)), Answer(("e9",)), Answer(()), Answer(("e2",), {"e2": ("Other",)})]
    s = score(qs, answers)
    assert (s.ndcg5, s.hit1, s.noise, s.chapter_accuracy) == (1.0, 1.0, 0.5, 0.0)
    assert (s.answered, s.noise_questions, s.chapter_questions) == (2, 2, 1)


def _setting(t: float, share: float, ndcg5: float, noise: float) -> Setting:
    return Setting(t, share, True, Scores(ndcg5, 0.0, noise, 0.0, 10, 5, 2))


def test_the_threshold_rule_is_least_noise_then_best_ndcg_then_the_stricter_gate() -> None:
    rows = [_setting(0.1, 0.5, 0.90, 0.2), _setting(0.15, 0.5, 0.80, 0.0), _setting(0.2, 0.5, 0.78, 0.0),
            _setting(0.3, 0.5, 0.80, 0.0), _setting(0.15, 0.0, 0.85, 0.4)]
    best = choose_setting(rows)
    assert (best.threshold, best.min_share) == (0.3, 0.5)  # 0.80 twice at zero noise: the higher threshold
    # no row at zero noise: the least noise, then nDCG
    assert choose_setting([_setting(0.1, 0.0, 0.9, 0.3), _setting(0.2, 0.0, 0.7, 0.1)]).threshold == 0.2
    with pytest.raises(ValueError):
        choose_setting([])


def _channel(noise: float, channel: float) -> Scores:
    return Scores(0.8, 0.8, noise, 0.5, 10, 5, 2, chapter_channel=channel)


def test_the_chapter_threshold_rule_is_least_noise_then_best_channel_then_the_stricter_gate() -> None:
    rows = [(0.1, _channel(0.2, 0.95)), (0.15, _channel(0.0, 0.80)), (0.25, _channel(0.0, 0.80)),
            (0.3, _channel(0.0, 0.75)), (1.01, _channel(0.0, 0.60))]
    assert choose_chapter_threshold(rows) == 0.25  # 0.80 twice at zero noise: the higher threshold
    assert choose_chapter_threshold([(0.1, _channel(0.3, 0.9)), (0.2, _channel(0.1, 0.5))]) == 0.2
    with pytest.raises(ValueError):
        choose_chapter_threshold([])
