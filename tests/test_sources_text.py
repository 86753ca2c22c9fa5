"""bot.sources.text: HTML to text, itunes durations, chapter lists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import Chapter
from bot.sources.text import (
    MAX_CHAPTER_TITLE,
    parse_chapters,
    parse_duration_text,
    strip_html,
)

# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3723", 3723),
        ("2799", 2799),
        ("0", 0),
        ("3723.6", 3723),  # fractional seconds are truncated
        ("62:03", 62 * 60 + 3),  # M:SS with minutes past 59 (no hour part)
        ("46:39", 46 * 60 + 39),
        ("5:30", 330),
        ("00:46:39", 2799),
        ("1:02:03", 3723),
        ("0:22:55", 1375),
        ("  46:09 \n", 2769),
        ("10:00:00", 36000),
    ],
)
def test_duration_forms(text: str, seconds: int) -> None:
    assert parse_duration_text(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "00:50:95",  # seconds field over 59
        "1:75:00",  # minutes over 59 next to hours
        "5:3:",
        "1:02:03:04",
        "-30",
        "",
        "   ",
        "garbage",
        "46m 39s",
        "12:ab",
        "9" * 5000,  # int() of this would raise in 3.11 (max str digits)
        "١٢:٣٠",  # Arabic-Indic digits: only ASCII digits are read
    ],
)
def test_broken_durations_are_none(text: str) -> None:
    assert parse_duration_text(text) is None


@pytest.mark.parametrize("value", [None, 12.5, b"3723", ["1:00"], True, -5])
def test_non_string_durations(value: object) -> None:
    assert parse_duration_text(value) is None


def test_int_duration_passes_through() -> None:
    assert parse_duration_text(3723) == 3723


@given(st.text(max_size=40))
def test_duration_never_raises(text: str) -> None:
    result = parse_duration_text(text)
    assert result is None or (isinstance(result, int) and result >= 0)


# ------------------------------------------------------------------ strip_html


def test_strip_html_paragraphs_breaks_entities() -> None:
    html = "<p>Hello &amp; <b>world</b></p><p>line one<br/>line two &lt;3</p>"
    assert strip_html(html) == "Hello & world\n\nline one\nline two <3"


def test_strip_html_drops_scripts_and_styles() -> None:
    html = "<style>p{color:red}</style><p>kept</p><script>alert(1)</script>"
    assert strip_html(html) == "kept"


def test_strip_html_collapses_whitespace_and_nbsp() -> None:
    assert strip_html("  a\u00a0\u00a0 b \t c  ") == "a b c"
    assert strip_html("<div>a</div>\n\n\n\n<div>b</div>") == "a\n\nb"


def test_strip_html_plain_text_and_stray_angle_brackets() -> None:
    assert strip_html("AT&T says 1 < 2") == "AT&T says 1 < 2"
    assert strip_html("") == ""


def test_strip_html_list_items_become_lines() -> None:
    assert strip_html("<ul><li>Accept</li><li>Read</li></ul>") == "Accept\nRead"


# ------------------------------------------------------------------- chapters

SEED_002_POSTGRES = (
    "Intermediate and Advanced Backend Engineering Course Bundlehttps://courses.husseinnasser.com/bundle"
    "My Book, Root Cause: Stories and Lessons from Two Decades of Backend Engineering Bugs "
    "https://amzn.to/4cKfZhe 0:00 Intro2:30 The Discovery6:30 Spinlocks9:25 Preemption 13:00 Root "
    "Cause17:00 How Postgres Processes exacerbated the problem 22:30 Is the fix easy?25:50 Summary"
)
SEED_004_PAGE_FAULTS = (
    "In this episode of the backend engineering show I dissect the need and the cost page faults "
    "in the kernel. 0:00 Intro 4:00 Virtual memoryAbstraction of physical memoryMemory sharingAllow "
    "more processes to run , unused go to diskNuma, kernel can place memory near the cpu12:00 VMA "
    "areasText/code Data BSSHeapStack19:50 Kernel mode25:30 What is a Page fault?30:30 First access "
    "page fault33:00 Stack Expansion page fault34:30 CoW page fault38:00 Swap page fault39:39 File "
    "backed page fault40:29 Permission page fault 45:30 Summary"
)
SEED_004_PAGE_TABLES = (
    "I explore the inner workings of page tables in this episode.0:00 Intro2:00 Virtual Memory ⁃ ⁃ "
    "8:00 MMU10:00 Page Tables ⁃ ⁃ ⁃ ⁃ ⁃ ⁃ ⁃ 11:30 Single Table Byte Addressability   ⁃ ⁃ ⁃ ⁃ ⁃ ⁃ ⁃ ⁃ "
    "16:00 Single Table Page addressability  ⁃ ⁃ ⁃ ⁃ ⁃ 19:00 Multi-level Paging (Radix tree) ⁃ ⁃ "
    "31:00 Huge Tables ⁃ ⁃ 33:00 TLB ⁃ ⁃ Summary"
)
SEED_002_ECH = (
    "In this video I go through pros and cons of this new rfc. 0:00 Intro 2:00 SNI 4:00 Client "
    "Hello 8:40 Encrypted Client Hello 11:30 Inner Client Hello Encryption 18:00 Client-Facing Outer "
    "SNI 21:20 Decrypting Inner Client Hello 23:30 Disadvantages 26:00 Censorship vs Privacy ECH "
    "https://blog.cloudflare.com/announcing-encrypted-client-hello/ "
    "https://chromestatus.com/feature/6196703843581952"
)


def _pairs(chapters: tuple[Chapter, ...]) -> list[tuple[int, str]]:
    return [(c.start_s, c.title) for c in chapters]


def test_chapters_run_on_form_seed_002() -> None:
    assert _pairs(parse_chapters(SEED_002_POSTGRES)) == [
        (0, "Intro"),
        (150, "The Discovery"),
        (390, "Spinlocks"),
        (565, "Preemption"),
        (780, "Root Cause"),
        (1020, "How Postgres Processes exacerbated the problem"),
        (1350, "Is the fix easy?"),
        (1550, "Summary"),
    ]


def test_chapters_spaced_form_with_trailing_urls_seed_002() -> None:
    assert _pairs(parse_chapters(SEED_002_ECH)) == [
        (0, "Intro"),
        (120, "SNI"),
        (240, "Client Hello"),
        (520, "Encrypted Client Hello"),
        (690, "Inner Client Hello Encryption"),
        (1080, "Client-Facing Outer SNI"),
        (1280, "Decrypting Inner Client Hello"),
        (1410, "Disadvantages"),
        (1560, "Censorship vs Privacy ECH"),
    ]


@pytest.mark.parametrize("link", ["HTTPS://Example.com/t=1:23:45", "Www.example.com/at/0:10", "https://x.io/5:00"])
def test_a_url_in_any_case_is_never_a_timestamp_or_a_title(link: str) -> None:
    text = f"0:00 Intro {link} 2:30 The Discovery"
    assert _pairs(parse_chapters(text)) == [(0, "Intro"), (150, "The Discovery")]


def test_urls_are_blanked_even_after_a_character_that_lowercases_into_two() -> None:
    # "İ".lower() is two characters: offsets in the lowercased text shift.
    text = "İİ 0:00 Intro https://a.io/1:00:00 2:30 The Discovery"
    assert _pairs(parse_chapters(text)) == [(0, "Intro"), (150, "The Discovery")]


def test_chapters_decorative_bullets_seed_004() -> None:
    assert _pairs(parse_chapters(SEED_004_PAGE_TABLES)) == [
        (0, "Intro"),
        (120, "Virtual Memory"),
        (480, "MMU"),
        (600, "Page Tables"),
        (690, "Single Table Byte Addressability"),
        (960, "Single Table Page addressability"),
        (1140, "Multi-level Paging (Radix tree)"),
        (1860, "Huge Tables"),
        (1980, "TLB Summary"),
    ]


def test_chapters_long_run_on_title_is_capped_seed_004() -> None:
    chapters = parse_chapters(SEED_004_PAGE_FAULTS)
    assert [c.start_s for c in chapters] == [
        0, 240, 720, 1190, 1530, 1830, 1980, 2070, 2280, 2379, 2429, 2730,
    ]
    assert chapters[1].title == (
        "Virtual memoryAbstraction of physical memoryMemory sharingAllow more processes to run , "
        "unused go…"
    )
    assert len(chapters[1].title) <= MAX_CHAPTER_TITLE
    assert [c.title for c in chapters[2:5]] == [
        "VMA areasText/code Data BSSHeapStack", "Kernel mode", "What is a Page fault?",
    ]
    assert chapters[-1].title == "Summary"


def test_chapters_one_per_line_last_title_ends_at_line_end() -> None:
    text = "0:00 Intro\n1:28 How Create Index works\n4:45 Create Index blocking Writes\n\nThanks for watching"
    assert _pairs(parse_chapters(text)) == [
        (0, "Intro"), (88, "How Create Index works"), (285, "Create Index blocking Writes"),
    ]


def test_chapters_hours() -> None:
    text = "0:00 Intro 45:10 Middle 1:02:03 Late part 1:30:00 End"
    assert _pairs(parse_chapters(text)) == [
        (0, "Intro"), (2710, "Middle"), (3723, "Late part"), (5400, "End"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no timestamps here",
        "Recorded live at 5:30 in Austin",  # a single timestamp is a mention
        "2:00 Late start 4:00 More",  # two late timestamps inside prose: mentions, not a list
        "We met at 10:30 and left at 11:45",  # clock times in prose
        "0:00 1:00 2:00",  # all titles empty
    ],
)
def test_no_chapters(text: str) -> None:
    assert parse_chapters(text) == ()


def test_list_starting_late_is_kept() -> None:
    # Show notes that leave out "0:00 Intro": the whole list used to be dropped.
    text = "In this episode 1:05 Why locks 12:30 Row locks 25:00 Deadlocks 40:10 Summary"
    assert _pairs(parse_chapters(text)) == [
        (65, "Why locks"), (750, "Row locks"), (1500, "Deadlocks"), (2410, "Summary"),
    ]


def test_late_two_chapter_list_needs_line_starts() -> None:
    text = "Chapters:\n2:15 The bug\n- 9:40 The fix\n"
    assert _pairs(parse_chapters(text)) == [(135, "The bug"), (580, "The fix")]
    assert parse_chapters("the bug at 2:15 and the fix at 9:40 tonight") == ()


def test_late_list_after_clock_time_mention() -> None:
    text = "Live at 20:30 UTC.\n1:00 Intro\n5:00 Topic\n9:00 End"
    # the longest increasing run wins, not the run from the first timestamp
    assert _pairs(parse_chapters(text)) == [(60, "Intro"), (300, "Topic"), (540, "End")]


def test_non_increasing_timestamp_is_title_text() -> None:
    text = "0:00 Intro 3:00 Why the 1:00 rule fails 5:00 End"
    assert _pairs(parse_chapters(text)) == [
        (0, "Intro"), (180, "Why the 1:00 rule fails"), (300, "End"),
    ]


def test_earlier_clock_time_is_skipped() -> None:
    text = "Live at 10:30 today. 0:00 Intro 2:00 Topic"
    assert _pairs(parse_chapters(text)) == [(0, "Intro"), (120, "Topic")]


def test_invalid_seconds_are_not_timestamps() -> None:
    assert _pairs(parse_chapters("0:00 Intro 1:75 nope 2:10 Real")) == [
        (0, "Intro 1:75 nope"), (130, "Real"),
    ]


def test_empty_titles_dropped() -> None:
    assert _pairs(parse_chapters("0:00 ⁃ ⁃ 1:00 First - 2:00 | Second |")) == [
        (60, "First"), (120, "Second"),
    ]


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("0123456789: \n\tab⁃•-|/h.Ü"), max_size=200))
def test_chapters_properties_on_noise(text: str) -> None:
    _assert_valid_chapters(parse_chapters(text))


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.integers(0, 5 * 3600), st.text(min_size=0, max_size=30)),
        max_size=15,
    )
)
def test_chapters_properties_on_lists(entries: list[tuple[int, str]]) -> None:
    text = " ".join(f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d} {t}" for s, t in entries)
    _assert_valid_chapters(parse_chapters(text))


def _assert_valid_chapters(chapters: tuple[Chapter, ...]) -> None:
    starts = [c.start_s for c in chapters]
    assert starts == sorted(set(starts)), "strictly increasing"
    for c in chapters:
        assert c.title and c.title == c.title.strip()
        assert len(c.title) <= MAX_CHAPTER_TITLE
        assert c.start_s >= 0


def test_youtube_timed_links_are_chapter_marks() -> None:
    text = ("Watch: https://www.youtube.com/watch?v=abc123XYZ_0\n"
            "https://www.youtube.com/watch?v=abc123XYZ_0&t=0s Intro\n"
            "https://youtu.be/abc123XYZ_0?t=754 The discovery\n"
            "https://www.youtube.com/watch?v=abc123XYZ_0&t=1h2m5s Wrap up")
    assert _pairs(parse_chapters(text)) == [(0, "Intro"), (754, "The discovery"), (3725, "Wrap up")]


def test_youtube_link_without_time_is_just_a_link() -> None:
    assert parse_chapters("see https://www.youtube.com/watch?v=abc&t= and 0:00 a 1:00 b") == (
        Chapter(0, "a"), Chapter(60, "b"))
