"""The DOMs of the frames a rendered capture showed, as its records hold them: what a reader saw
of the page beyond its own DOM (an article in an iframe). Every comparison of two renderings of
a page (history's, a capture's own "unchanged since", the live check's, the replay check's)
takes them from here, and leaves them out, saying so, for a capture made before frames were
recorded: its page section names no "frames", and its frames' DOMs are nowhere to compare."""

from __future__ import annotations

import json

from archiver.capture.browser.records import FRAME_DOM
from archiver.store.record_blocks import read_record_block
from archiver.store.rows import StoredRecord
from archiver.store.storage import Storage

# Said of a capture with no frame records to compare: made before frames were recorded, or, in a
# listing, one whose WARC file could not be read (compared by its cataloged DOM digest alone).
FRAMES_NOT_COMPARED = ("the text of its frames not compared: the capture holds no record of them to compare "
                       "(made before frames were recorded, or its WARC file could not be read)")
# A DOM record holding only the first part of its DOM (page_text.py) says nothing of the rest:
# two cut alike may differ past the cut, so it is never compared as whole.
DOM_CUT = "not compared: the DOM record was cut"


def holds_cut_dom(records: list[StoredRecord]) -> bool:
    """Whether any of a capture's DOM records (its page's, its frames') was cut (WARC-Truncated)."""
    return any(record.truncated for record in records if record.role in ("dom", FRAME_DOM))


def recorded_frames(storage: Storage, records: list[StoredRecord]) -> list[StoredRecord] | None:
    """Of a capture's `records`, those of its shown frames' DOMs, in the order its metadata lists
    them; None when it was made before frames were recorded (its metadata's page section names
    none, or it holds no such section). Raises what reading its metadata record raises."""
    for metadata in (record for record in records if record.role == "metadata"):
        try:
            details = json.loads(read_record_block(storage, metadata))
        except ValueError:  # a metadata record of another kind than the capture's JSON
            continue
        if (frames := listed_frames(details)) is not None:
            by_id = {record.record_id: record for record in records if record.role == FRAME_DOM}
            return [by_id[frame["dom_record_id"]] for frame in frames if frame.get("dom_record_id") in by_id]
    return None


def listed_frames(details: object) -> list[dict] | None:
    """The frames a capture's metadata `details` lists in its page section, each a dict naming
    its "url" and "dom_record_id"; None when it names none (made before frames were recorded,
    or not rendered in a browser)."""
    page = details.get("page") if isinstance(details, dict) else None
    if not isinstance(page, dict) or not isinstance(page.get("frames"), list):
        return None
    return [frame for frame in page["frames"] if isinstance(frame, dict)]
