"""The protocol reader's bookkeeping: naming a document's models across sessions, and the page's clock."""
from __future__ import annotations

import pytest

from apps.loadtest_protocol import _document_arrival_ms, model_names, rename_models


def _doc(first_id: int) -> dict:
    """A document shaped like Bokeh's: nested models, references by id only."""
    i = iter(range(first_id, first_id + 10))
    a, b, c = (f"p{next(i)}" for _ in range(3))
    return {"roots": [{"type": "object", "name": "Column", "id": a, "attributes": {
        "children": [{"type": "object", "name": "Plotly", "id": b, "attributes": {}},
                     {"type": "object", "name": "Plotly", "id": c, "attributes": {"source": {"id": b}}}]}}]}


def test_models_are_named_by_type_and_ordinal_whatever_their_ids():
    first, second = model_names(_doc(1000)), model_names(_doc(2000))
    assert first == {"p1000": ("Column", 0), "p1001": ("Plotly", 0), "p1002": ("Plotly", 1)}
    assert sorted(first.values()) == sorted(second.values())


def test_a_browsers_events_are_replayed_on_another_sessions_models():
    recorded = [{"kind": "ModelChanged", "model": {"id": "p1002"}, "attr": "relayout_data", "new": 1},
                {"kind": "ModelChanged", "model": {"id": "p9999"}, "attr": "x", "new": 2}]  # not in the doc
    named = rename_models(recorded, model_names(_doc(1000)))
    assert named == [{"kind": "ModelChanged", "model": {"id": ("Plotly", 1)}, "attr": "relayout_data", "new": 1}]
    ids = {name: mid for mid, name in model_names(_doc(2000)).items()}
    assert rename_models(named, ids)[0]["model"] == {"id": "p2002"}
    as_json = [{**named[0], "model": {"id": list(named[0]["model"]["id"])}}]  # a recording read back
    assert rename_models(as_json, ids)[0]["model"] == {"id": "p2002"}


def test_the_document_arrives_with_its_last_buffer():
    header = '{"msgid": "p1", "msgtype": "PULL-DOC-REPLY", "reqid": "x", "num_buffers": 2}'
    messages = [(1.0, '{"msgtype": "ACK"}'), (2.0, "{}"), (3.0, "{}"),
                (10.0, header), (11.0, "{}"), (12.0, '{"doc": {}}'),
                (13.0, '{"id": "b1"}'), (14.0, None), (15.0, '{"id": "b2"}'), (16.0, None), (20.0, "next")]
    assert _document_arrival_ms(messages) == 16.0
    with pytest.raises(RuntimeError, match="never received the whole document"):
        _document_arrival_ms(messages[:8])
